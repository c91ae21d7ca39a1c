import { Secret, TOTP } from 'otpauth';

/** RFC 6238 defaults that every authenticator app understands. */
const PERIOD_S = 30;
const DIGITS = 6;

export function createTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function totpUri(opts: { secret: string; issuer: string; label: string }): string {
  return makeTotp(opts.secret, opts.issuer, opts.label).toString();
}

/**
 * Returns the time step the code belongs to, or null. One step of drift either way is
 * accepted (a phone clock a little off); callers store the step so a code works once.
 */
export function verifyTotp(secret: string, code: string, now: Date): number | null {
  const token = code.trim();
  if (!/^\d{6}$/.test(token)) return null;
  const delta = makeTotp(secret).validate({ token, timestamp: now.getTime(), window: 1 });
  if (delta === null) return null;
  return Math.floor(now.getTime() / 1000 / PERIOD_S) + delta;
}

/** The current code; for tests and for the demo's enrolment check. */
export function currentTotp(secret: string, now: Date): string {
  return makeTotp(secret).generate({ timestamp: now.getTime() });
}

function makeTotp(secret: string, issuer = 'Soglasie', label = 'account'): TOTP {
  return new TOTP({
    issuer,
    label,
    algorithm: 'SHA1',
    digits: DIGITS,
    period: PERIOD_S,
    secret: Secret.fromBase32(secret),
  });
}
