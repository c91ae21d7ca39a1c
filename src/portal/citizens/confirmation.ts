import type { Clock } from '../../platform/clock.js';
import { TooManyAttemptsError } from '../../platform/http/errors.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import { limiterKey } from '../../platform/login/login-routes.js';
import type { Notifier } from '../../platform/notify/notifier.js';
import type { OneTimeCodes } from '../../platform/otp/one-time-codes.js';
import { verifyTotp } from '../../platform/otp/totp.js';
import type { CitizenService } from './citizen.service.js';

/**
 * Confirming an operation (a consent, a revocation) with the citizen's second factor: an
 * SMS code bound to that very operation, or a fresh TOTP code from the enrolled app.
 */
export function createConfirmations(deps: {
  citizens: CitizenService;
  codes: OneTimeCodes;
  notifier: Notifier;
  clock: Clock;
}) {
  return {
    /** Sends an SMS code for `purpose` when the citizen confirms by SMS; TOTP needs nothing. */
    async send(
      citizen: { id: string; secondFactor: 'sms' | 'totp'; phone: string },
      purpose: string,
      text: (code: string) => { subject: string; text: string },
    ): Promise<void> {
      if (citizen.secondFactor !== 'sms') return;
      const { code } = await deps.codes.issue(citizen.id, purpose);
      await deps.notifier.send({ to: citizen.phone, channel: 'sms', code, ...text(code) });
    },

    async verify(
      citizenId: string,
      method: 'sms' | 'totp',
      purpose: string,
      code: string,
    ): Promise<boolean> {
      if (method === 'sms') return (await deps.codes.verify(citizenId, purpose, code.trim())).ok;
      const account = await deps.citizens.loginAccount(citizenId);
      const step = account?.totpSecret
        ? verifyTotp(account.totpSecret, code, deps.clock.now())
        : null;
      return step !== null && (await deps.citizens.useTotpStep(citizenId, step));
    },
  };
}

export type Confirmations = ReturnType<typeof createConfirmations>;

/**
 * Notices to the citizen about their data (J5, J12): by e-mail when it is confirmed,
 * otherwise by SMS. They carry no personal data beyond what the citizen already knows.
 */
export function createCitizenNotices(deps: { citizens: CitizenService; notifier: Notifier }) {
  return async function notifyCitizen(
    citizenId: string,
    subject: string,
    text: string,
  ): Promise<void> {
    const found = await deps.citizens.personalData(citizenId);
    if (!found) return;
    const { personal, citizen } = found;
    const byEmail = personal.email !== undefined && citizen.emailConfirmed;
    await deps.notifier.send({
      to: byEmail ? personal.email! : personal.phone,
      channel: byEmail ? 'email' : 'sms',
      subject,
      text,
    });
  };
}

/**
 * Checks the one-time code that confirms an operation, under the account's attempt limit
 * (the same counter as login: guessing here brings the lock there too). The same rules
 * and words wherever a citizen confirms something: a consent, a connection, a revocation.
 */
export async function checkOperationCode(
  deps: { confirmations: Confirmations; limiter: AttemptLimiter },
  citizen: { id: string; secondFactor: 'sms' | 'totp' },
  purpose: string,
  code: string,
): Promise<
  | { ok: true }
  /** `wrong`: a code was checked and did not match (not merely refused while locked). */
  | { ok: false; status: 401 | 429; message: string; wrong: boolean }
> {
  const key = limiterKey(citizen.id);
  try {
    await deps.limiter.assertAllowed(key);
  } catch (err) {
    if (err instanceof TooManyAttemptsError)
      return { ok: false, status: 429, message: err.userMessage, wrong: false };
    throw err;
  }
  if (await deps.confirmations.verify(citizen.id, citizen.secondFactor, purpose, code)) {
    await deps.limiter.reset(key);
    return { ok: true };
  }
  const { locked } = await deps.limiter.recordFailure(key);
  return locked
    ? {
        ok: false,
        status: 429,
        message:
          'Слишком много неудачных попыток. Подтверждение временно заблокировано на 15 минут.',
        wrong: true,
      }
    : { ok: false, status: 401, message: 'Неверный или устаревший код.', wrong: true };
}
