import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { h } from 'preact';
import type { Clock } from '../clock.js';
import { verifyAgainstDummy, verifyPassword } from '../crypto/index.js';
import { TooManyAttemptsError, UnauthorizedError } from '../http/errors.js';
import { wantsHtml } from '../http/problem.js';
import type { AttemptLimiter } from '../limits/attempt-limiter.js';
import type { Notifier } from '../notify/notifier.js';
import type { OneTimeCodes } from '../otp/one-time-codes.js';
import { CODE_RESEND_INTERVAL_MS } from '../otp/one-time-codes.js';
import { verifyTotp } from '../otp/totp.js';
import type { LayoutProps } from '../views/layout.js';
import { CodePage, LoginPage } from './login-pages.js';

/** What the login flow needs to know about an account; each service maps its own. */
export interface LoginAccount {
  id: string;
  passwordHash: string;
  secondFactor: 'sms' | 'totp';
  /** Where SMS codes go. */
  phone: string;
  /** Base32 TOTP secret, when the second factor is an authenticator app. */
  totpSecret?: string | undefined;
  blocked: boolean;
}

export type LoginEvent =
  | { type: 'login.password_failed' | 'login.code_failed' | 'login.locked'; accountId: string }
  | { type: 'login.unknown_account' }
  | { type: 'login.succeeded'; accountId: string; method: 'sms' | 'totp' };

export interface LoginDeps {
  look: Pick<LayoutProps, 'site' | 'theme' | 'demo'>;
  clock: Clock;
  codes: OneTimeCodes;
  limiter: AttemptLimiter;
  notifier: Notifier;
  /** Finds the account for whatever the person typed (phone, e-mail, SNILS, login). */
  findAccount(identifier: string): Promise<LoginAccount | undefined>;
  loadAccount(id: string): Promise<LoginAccount | undefined>;
  /** Records a TOTP time step as used; false if it (or a later one) was used already. */
  useTotpStep(accountId: string, step: number): Promise<boolean>;
  identifierLabel: string;
  identifierHint?: string;
  /** Sender name in the SMS text, e.g. «Госуслуги». */
  smsSender: string;
  homePath: string;
  onEvent?: (event: LoginEvent) => void | Promise<void>;
}

/** A login waiting for its second factor; the session holds only this. */
interface PendingLogin {
  accountId: string;
  method: 'sms' | 'totp';
  startedAt: number;
  /** Where to go after login (a local path), e.g. back to an authorization request. */
  next?: string | undefined;
}

/** Only local paths: an open redirect after login would hand the session to a phisher. */
export function safeNextPath(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 512) return undefined;
  return /^\/(?![/\\])[\w\-./?=&%]*$/.test(value) ? value : undefined;
}

const PENDING_LOGIN_TTL_MS = 10 * 60_000;
const WRONG_CREDENTIALS = 'Неверный логин или пароль.';

const LoginBody = Type.Object({
  _csrf: Type.String({ maxLength: 128 }),
  username: Type.String({ maxLength: 254 }),
  password: Type.String({ maxLength: 256 }),
});
const CodeBody = Type.Object({
  _csrf: Type.String({ maxLength: 128 }),
  code: Type.String({ maxLength: 32 }),
});
const CsrfOnly = Type.Object({ _csrf: Type.String({ maxLength: 128 }) });

export const limiterKey = (accountId: string) => `account:${accountId}`;

/** Password, then a one-time code by SMS or an authenticator app; then a fresh session. */
export function registerLoginRoutes(app: FastifyInstance, deps: LoginDeps): void {
  const emit = async (event: LoginEvent) => {
    await deps.onEvent?.(event);
  };

  const loginPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { error?: string; notice?: string; username?: string },
    status = 200,
  ) =>
    reply.page(
      h(LoginPage, {
        look: deps.look,
        csrf: await request.session.csrfToken(),
        identifierLabel: deps.identifierLabel,
        identifierHint: deps.identifierHint,
        ...extra,
      }),
      status,
    );

  const pendingLogin = (request: FastifyRequest): PendingLogin | undefined => {
    const pending = request.session.data.pendingLogin as PendingLogin | undefined;
    if (!pending) return undefined;
    if (deps.clock.now().getTime() - pending.startedAt > PENDING_LOGIN_TTL_MS) return undefined;
    return pending;
  };

  const codePage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    pending: PendingLogin,
    extra: { error?: string; notice?: string },
    status = 200,
  ) => {
    const account = await deps.loadAccount(pending.accountId);
    return reply.page(
      h(CodePage, {
        look: deps.look,
        csrf: await request.session.csrfToken(),
        method: pending.method,
        maskedPhone: account ? maskPhone(account.phone) : undefined,
        ...extra,
      }),
      status,
    );
  };

  const sendSmsCode = async (account: LoginAccount) => {
    const { code } = await deps.codes.issue(account.id, 'login');
    await deps.notifier.send({
      to: account.phone,
      channel: 'sms',
      subject: 'Код для входа',
      text: `${deps.smsSender}: код для входа ${code}. Никому не сообщайте его.`,
      code,
    });
  };

  app.get('/login', { schema: { hide: true } }, async (request, reply) => {
    const next = safeNextPath((request.query as { next?: unknown }).next);
    if (request.session.userId) return reply.redirect(next ?? deps.homePath, 303);
    if (next) await request.session.setData({ afterLogin: next });
    return loginPage(request, reply, {});
  });

  app.post('/login', { schema: { hide: true, body: LoginBody } }, async (request, reply) => {
    const { username, password } = request.body as { username: string; password: string };
    const identifier = username.trim();
    if (!identifier || !password) {
      return loginPage(
        request,
        reply,
        { error: 'Введите логин и пароль.', username: identifier },
        400,
      );
    }
    const account = await deps.findAccount(identifier);
    if (!account) {
      // Same work as for a real account: the response time does not reveal who exists.
      await verifyAgainstDummy(password);
      await emit({ type: 'login.unknown_account' });
      return loginPage(request, reply, { error: WRONG_CREDENTIALS, username: identifier }, 401);
    }
    const key = limiterKey(account.id);
    try {
      await deps.limiter.assertAllowed(key);
    } catch (err) {
      if (err instanceof TooManyAttemptsError) {
        return loginPage(request, reply, { error: err.userMessage }, 429);
      }
      throw err;
    }
    if (!(await verifyPassword(account.passwordHash, password))) {
      const { locked } = await deps.limiter.recordFailure(key);
      await emit({
        type: locked ? 'login.locked' : 'login.password_failed',
        accountId: account.id,
      });
      if (locked) {
        return loginPage(
          request,
          reply,
          { error: 'Слишком много неудачных попыток. Вход временно заблокирован на 15 минут.' },
          429,
        );
      }
      return loginPage(request, reply, { error: WRONG_CREDENTIALS, username: identifier }, 401);
    }
    if (account.blocked) {
      return loginPage(
        request,
        reply,
        { error: 'Учётная запись заблокирована. Обратитесь в службу поддержки.' },
        403,
      );
    }
    const method = account.secondFactor === 'totp' && account.totpSecret ? 'totp' : 'sms';
    const pending: PendingLogin = {
      accountId: account.id,
      method,
      startedAt: deps.clock.now().getTime(),
      next: safeNextPath(request.session.data.afterLogin),
    };
    await request.session.regenerate(null, { pendingLogin: pending });
    if (method === 'sms') await sendSmsCode(account);
    return reply.redirect('/login/code', 303);
  });

  app.get('/login/code', { schema: { hide: true } }, async (request, reply) => {
    const pending = pendingLogin(request);
    if (!pending) return reply.redirect('/login', 303);
    return codePage(request, reply, pending, {});
  });

  app.post('/login/code', { schema: { hide: true, body: CodeBody } }, async (request, reply) => {
    const pending = pendingLogin(request);
    if (!pending) {
      return loginPage(
        request,
        reply,
        { notice: 'Время на ввод кода истекло. Войдите снова.' },
        401,
      );
    }
    const key = limiterKey(pending.accountId);
    try {
      await deps.limiter.assertAllowed(key);
    } catch (err) {
      if (err instanceof TooManyAttemptsError) {
        return codePage(request, reply, pending, { error: err.userMessage }, 429);
      }
      throw err;
    }
    const account = await deps.loadAccount(pending.accountId);
    if (!account || account.blocked) {
      await request.session.destroy();
      return reply.redirect('/login', 303);
    }
    const code = (request.body as { code: string }).code.trim();
    let failure: string | undefined;
    if (pending.method === 'sms') {
      const check = await deps.codes.verify(account.id, 'login', code);
      if (!check.ok) {
        failure = {
          wrong: 'Неверный код.',
          expired: 'Срок действия кода истёк. Запросите новый код.',
          missing: 'Код больше не действует. Запросите новый код.',
          exhausted:
            'Код больше не действует: слишком много неверных попыток. Запросите новый код.',
        }[check.reason];
      }
    } else {
      const step = account.totpSecret
        ? verifyTotp(account.totpSecret, code, deps.clock.now())
        : null;
      if (step === null) failure = 'Неверный код.';
      else if (!(await deps.useTotpStep(account.id, step))) {
        failure = 'Этот код уже использован. Дождитесь следующего кода в приложении.';
      }
    }
    if (failure) {
      const { locked } = await deps.limiter.recordFailure(key);
      await emit({ type: locked ? 'login.locked' : 'login.code_failed', accountId: account.id });
      if (locked) {
        await request.session.destroy();
        return loginPage(
          request,
          reply,
          { error: 'Слишком много неудачных попыток. Вход временно заблокирован на 15 минут.' },
          429,
        );
      }
      return codePage(request, reply, pending, { error: failure }, 401);
    }
    await deps.limiter.reset(key);
    await request.session.regenerate(account.id, {});
    await emit({ type: 'login.succeeded', accountId: account.id, method: pending.method });
    return reply.redirect(pending.next ?? deps.homePath, 303);
  });

  app.post(
    '/login/code/resend',
    { schema: { hide: true, body: CsrfOnly } },
    async (request, reply) => {
      const pending = pendingLogin(request);
      if (!pending || pending.method !== 'sms') return reply.redirect('/login', 303);
      const last = await deps.codes.lastIssuedAt(pending.accountId, 'login');
      const wait = last
        ? CODE_RESEND_INTERVAL_MS - (deps.clock.now().getTime() - last.getTime())
        : 0;
      if (wait > 0) {
        return codePage(
          request,
          reply,
          pending,
          { error: `Новый код можно запросить через ${Math.ceil(wait / 1000)} с.` },
          429,
        );
      }
      const account = await deps.loadAccount(pending.accountId);
      if (!account) return reply.redirect('/login', 303);
      await sendSmsCode(account);
      return codePage(request, reply, pending, { notice: 'Новый код отправлен.' });
    },
  );

  app.post('/logout', { schema: { hide: true, body: CsrfOnly } }, async (request, reply) => {
    await request.session.destroy();
    return reply.redirect('/login', 303);
  });
}

/**
 * Guard for pages and APIs behind login: pages redirect to /login, APIs get 401.
 * Returns the account id.
 */
export function requireLogin(request: FastifyRequest, reply: FastifyReply): string | undefined {
  const userId = request.session.userId;
  if (userId) return userId;
  if (wantsHtml(request)) {
    void reply.redirect('/login', 303);
    return undefined;
  }
  throw new UnauthorizedError();
}

/** +79990000001 → +7 999 ***-**-01: enough to recognise, not enough to harvest. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  if (digits.length < 4) return '***';
  return `+${digits.slice(0, 1)} ${digits.slice(1, 4)} ***-**-${digits.slice(-2)}`;
}
