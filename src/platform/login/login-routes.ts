import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { h } from 'preact';
import QRCode from 'qrcode';
import type { Clock } from '../clock.js';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  verifyAgainstDummy,
  verifyPassword,
  type Sealer,
} from '../crypto/index.js';
import { TooManyAttemptsError, UnauthorizedError } from '../http/errors.js';
import { wantsHtml } from '../http/problem.js';
import {
  IP_LOGIN_LIMITS,
  type AttemptLimiter,
  type AttemptLimits,
} from '../limits/attempt-limiter.js';
import type { Notifier } from '../notify/notifier.js';
import type { OneTimeCodes } from '../otp/one-time-codes.js';
import { CODE_RESEND_INTERVAL_MS } from '../otp/one-time-codes.js';
import { createTotpSecret, totpUri, verifyTotp } from '../otp/totp.js';
import type { LayoutProps } from '../views/layout.js';
import { deviceHash, ensureDeviceId, readDeviceId, type DeviceCookieOptions } from './device.js';
import { CodePage, DeviceCodePage, DeviceEnrolPage, LoginPage } from './login-pages.js';

/** What the login flow needs to know about an account; each service maps its own. */
export interface LoginAccount {
  id: string;
  passwordHash: string;
  secondFactor: 'sms' | 'totp';
  /** Where SMS codes go. */
  phone: string;
  /** Base32 TOTP secret, when the second factor is an authenticator app. */
  totpSecret?: string | undefined;
  /**
   * SHA-256 of the device cookie of the browser the authenticator app was enrolled on
   * (see device.ts). A TOTP login from any other device must re-enrol, confirmed by SMS.
   */
  totpDeviceHash?: string | null | undefined;
  blocked: boolean;
  /** Shown instead of the generic sentence when the account is blocked. */
  blockedMessage?: string | undefined;
}

/** Events carry ids and the client address, never what the person typed. */
export type LoginEvent =
  | {
      type: 'login.password_failed' | 'login.code_failed' | 'login.locked';
      accountId: string;
      ip: string;
    }
  | { type: 'login.unknown_account' | 'login.ip_locked'; ip: string }
  /** ASVS 2.8.5: a TOTP code used a second time; refused, and the holder is told. */
  | { type: 'login.totp_reused'; accountId: string; ip: string }
  /** A TOTP app enrolled anew on this device (SMS code + code from the new app). */
  | { type: 'login.device_reenrolled'; accountId: string; ip: string }
  /** The service's security rules refused a login whose factors were right. */
  | { type: 'login.refused'; accountId: string; ip: string }
  | {
      type: 'login.succeeded';
      accountId: string;
      method: 'sms' | 'totp';
      ip: string;
      deviceHash?: string | undefined;
    };

/** A login whose factors are right, as the service's security rules see it. */
export interface LoginAttempt {
  accountId: string;
  method: 'sms' | 'totp';
  ip: string;
  /** The device cookie's hash (see device.ts), when the service uses device cookies. */
  deviceHash?: string | undefined;
  at: Date;
}

export type LoginVerdict = { allow: true } | { allow: false; message: string };

/** Binding TOTP to the device it was enrolled on; re-enrolment on another one. */
export interface TotpDeviceBinding {
  /** Seals the new secret while it waits in the session for its first code. */
  sealer: Sealer;
  /** Issuer shown in the authenticator app, e.g. «Госуслуги». */
  issuer: string;
  /** Stores the new secret bound to the device and marks `step` used (it logged in). */
  reenrol(
    accountId: string,
    enrolment: { secret: string; deviceHash: string; step: number },
  ): Promise<void>;
}

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
  /**
   * Failures per client address across accounts (password spraying); the default is
   * IP_LOGIN_LIMITS on the same counters as `limiter`; false turns it off.
   */
  ipLimits?: AttemptLimits | false;
  /** The device cookie; without it logins are not tied to devices. */
  device?: DeviceCookieOptions;
  /** With `device`: a TOTP login from a device other than the enrolled one re-enrols. */
  totpDevices?: TotpDeviceBinding;
  /**
   * Called when both factors are right, before the session starts: the service's security
   * rules (impossible travel, …) may refuse the login with a message for the person.
   */
  screenLogin?: (attempt: LoginAttempt) => Promise<LoginVerdict>;
}

/** A login waiting for its second factor; the session holds only this. */
interface PendingLogin {
  accountId: string;
  method: 'sms' | 'totp';
  startedAt: number;
  /** Where to go after login (a local path), e.g. back to an authorization request. */
  next?: string | undefined;
  /**
   * A TOTP login from a device other than the enrolled one: `device` waits for the SMS
   * code, then `enrol` for the first code of the app enrolled anew (its secret sealed).
   */
  stage?: 'device' | 'enrol' | undefined;
  enrolment?: string | undefined;
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
/** Failures from one client address, whichever accounts they were against. */
export const ipLimiterKey = (ip: string) => `ip:${ip}`;
/**
 * Failures against a login name that matches no account count like an account's, so a
 * lock (429) after five tries does not reveal that the account exists.
 */
const unknownKey = (identifier: string) =>
  `unknown:${createHash('sha256').update(identifier.toLowerCase()).digest('hex')}`;

/** The purpose of the SMS code that confirms re-enrolment on a new device. */
export const DEVICE_CODE_PURPOSE = 'totp-device';
const LOCKED = 'Слишком много неудачных попыток. Вход временно заблокирован на 15 минут.';
const IP_LOCKED = 'Слишком много неудачных попыток входа с вашего адреса.';

/** Password, then a one-time code by SMS or an authenticator app; then a fresh session. */
export function registerLoginRoutes(app: FastifyInstance, deps: LoginDeps): void {
  if (deps.totpDevices && !deps.device) {
    throw new Error('totpDevices needs the device cookie (deps.device)');
  }
  const ipLimiter =
    deps.ipLimits === false ? undefined : deps.limiter.withLimits(deps.ipLimits ?? IP_LOGIN_LIMITS);
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

  const sendDeviceCode = async (account: LoginAccount) => {
    const { code } = await deps.codes.issue(account.id, DEVICE_CODE_PURPOSE);
    await deps.notifier.send({
      to: account.phone,
      channel: 'sms',
      subject: 'Вход с нового устройства',
      text: `${deps.smsSender}: код ${code} для входа с нового устройства и повторного подключения приложения-аутентификатора. Никому не сообщайте его. Если вход выполняете не вы, обратитесь в службу поддержки.`,
      code,
    });
  };

  /** 429 while the client address is locked (password spraying); undefined otherwise. */
  const ipLocked = async (request: FastifyRequest): Promise<TooManyAttemptsError | undefined> => {
    if (!ipLimiter) return undefined;
    try {
      await ipLimiter.assertAllowed(ipLimiterKey(request.ip));
      return undefined;
    } catch (err) {
      if (err instanceof TooManyAttemptsError)
        return new TooManyAttemptsError(err.retryAfterSeconds, IP_LOCKED);
      throw err;
    }
  };

  /** Counts a failure against the account (or login name) and the client address. */
  const countFailure = async (request: FastifyRequest, key: string) => {
    const { locked } = await deps.limiter.recordFailure(key);
    if (ipLimiter) {
      const byIp = await ipLimiter.recordFailure(ipLimiterKey(request.ip));
      if (byIp.locked && byIp.failures === (deps.ipLimits || IP_LOGIN_LIMITS).maxFailures) {
        await emit({ type: 'login.ip_locked', ip: request.ip });
      }
    }
    return locked;
  };

  /** Account lock or address lock, as a page with Retry-After; undefined when allowed. */
  const refuseIfLocked = async (
    request: FastifyRequest,
    reply: FastifyReply,
    key: string,
    page: (message: string) => Promise<FastifyReply>,
  ): Promise<FastifyReply | undefined> => {
    let refusal = await ipLocked(request);
    if (!refusal) {
      try {
        await deps.limiter.assertAllowed(key);
      } catch (err) {
        if (!(err instanceof TooManyAttemptsError)) throw err;
        refusal = err;
      }
    }
    if (!refusal) return undefined;
    reply.header('retry-after', refusal.headers['retry-after']);
    return page(refusal.userMessage);
  };

  /**
   * Both factors are right: the service's rules may still refuse (then no session starts);
   * otherwise a fresh session replaces the pre-login one.
   */
  const completeLogin = async (
    request: FastifyRequest,
    reply: FastifyReply,
    account: LoginAccount,
    pending: PendingLogin,
  ) => {
    await deps.limiter.reset(limiterKey(account.id));
    const hash = deps.device ? deviceHash(ensureDeviceId(request, reply, deps.device)) : undefined;
    const verdict = await deps.screenLogin?.({
      accountId: account.id,
      method: pending.method,
      ip: request.ip,
      deviceHash: hash,
      at: deps.clock.now(),
    });
    if (verdict && !verdict.allow) {
      await request.session.destroy();
      await emit({ type: 'login.refused', accountId: account.id, ip: request.ip });
      return loginPage(request, reply, { error: verdict.message }, 403);
    }
    await request.session.regenerate(account.id, {});
    await emit({
      type: 'login.succeeded',
      accountId: account.id,
      method: pending.method,
      ip: request.ip,
      deviceHash: hash,
    });
    return reply.redirect(pending.next ?? deps.homePath, 303);
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
    // An unknown login name is counted and locked like an account, so neither the answer,
    // its timing nor a lock tells whether the account exists.
    const key = account ? limiterKey(account.id) : unknownKey(identifier);
    const refused = await refuseIfLocked(request, reply, key, (error) =>
      loginPage(request, reply, { error }, 429),
    );
    if (refused) return refused;
    if (!account) {
      // Same work as for a real account: the response time does not reveal who exists.
      await verifyAgainstDummy(password);
      const locked = await countFailure(request, key);
      await emit({ type: 'login.unknown_account', ip: request.ip });
      if (locked) return loginPage(request, reply, { error: LOCKED }, 429);
      return loginPage(request, reply, { error: WRONG_CREDENTIALS, username: identifier }, 401);
    }
    if (!(await verifyPassword(account.passwordHash, password))) {
      const locked = await countFailure(request, key);
      await emit({
        type: locked ? 'login.locked' : 'login.password_failed',
        accountId: account.id,
        ip: request.ip,
      });
      if (locked) return loginPage(request, reply, { error: LOCKED }, 429);
      return loginPage(request, reply, { error: WRONG_CREDENTIALS, username: identifier }, 401);
    }
    if (account.blocked) {
      return loginPage(
        request,
        reply,
        {
          error:
            account.blockedMessage ??
            'Учётная запись заблокирована. Обратитесь в службу поддержки.',
        },
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
    // TOTP is bound to the device it was enrolled on: from any other, re-enrol (SMS first).
    if (method === 'totp' && deps.totpDevices && deps.device) {
      const presented = readDeviceId(request, deps.device);
      if (!account.totpDeviceHash || !presented || deviceHash(presented) !== account.totpDeviceHash)
        pending.stage = 'device';
    }
    await request.session.regenerate(null, { pendingLogin: pending });
    if (pending.stage === 'device') {
      await sendDeviceCode(account);
      return reply.redirect('/login/device', 303);
    }
    if (method === 'sms') await sendSmsCode(account);
    return reply.redirect('/login/code', 303);
  });

  app.get('/login/code', { schema: { hide: true } }, async (request, reply) => {
    const pending = pendingLogin(request);
    if (!pending) return reply.redirect('/login', 303);
    if (pending.stage) return reply.redirect('/login/device', 303);
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
    // A login from a new device cannot skip its re-enrolment by posting here.
    if (pending.stage) return reply.redirect('/login/device', 303);
    const key = limiterKey(pending.accountId);
    const refused = await refuseIfLocked(request, reply, key, (error) =>
      codePage(request, reply, pending, { error }, 429),
    );
    if (refused) return refused;
    const account = await deps.loadAccount(pending.accountId);
    if (!account || account.blocked) {
      await request.session.destroy();
      return reply.redirect('/login', 303);
    }
    const code = (request.body as { code: string }).code.trim();
    let failure: string | undefined;
    if (pending.method === 'sms') {
      const check = await deps.codes.verify(account.id, 'login', code);
      if (!check.ok) failure = CODE_FAILURES[check.reason];
    } else {
      const step = account.totpSecret
        ? verifyTotp(account.totpSecret, code, deps.clock.now())
        : null;
      if (step === null) failure = 'Неверный код.';
      else if (!(await deps.useTotpStep(account.id, step))) {
        await emit({ type: 'login.totp_reused', accountId: account.id, ip: request.ip });
        failure = 'Этот код уже использован. Дождитесь следующего кода в приложении.';
      }
    }
    if (failure) {
      const locked = await countFailure(request, key);
      await emit({
        type: locked ? 'login.locked' : 'login.code_failed',
        accountId: account.id,
        ip: request.ip,
      });
      if (locked) {
        await request.session.destroy();
        return loginPage(request, reply, { error: LOCKED }, 429);
      }
      return codePage(request, reply, pending, { error: failure }, 401);
    }
    return completeLogin(request, reply, account, pending);
  });

  app.post(
    '/login/code/resend',
    { schema: { hide: true, body: CsrfOnly } },
    async (request, reply) => {
      const pending = pendingLogin(request);
      if (!pending || pending.method !== 'sms' || pending.stage)
        return reply.redirect('/login', 303);
      const wait = await resendWait(pending.accountId, 'login');
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

  const resendWait = async (accountId: string, purpose: string) => {
    const last = await deps.codes.lastIssuedAt(accountId, purpose);
    return last ? CODE_RESEND_INTERVAL_MS - (deps.clock.now().getTime() - last.getTime()) : 0;
  };

  // A TOTP login from a new device: the SMS code, then a new secret for the app, bound to
  // this device once the app shows its first code. The old device's binding ends.
  if (deps.totpDevices) registerDeviceRoutes(deps.totpDevices);

  function registerDeviceRoutes(binding: TotpDeviceBinding) {
    const enrolmentAad = (accountId: string) =>
      recordAad('http_sessions', accountId, 'totp_reenrolment');

    const devicePage = async (
      request: FastifyRequest,
      reply: FastifyReply,
      pending: PendingLogin,
      extra: { error?: string; notice?: string },
      status = 200,
    ) => {
      const account = await deps.loadAccount(pending.accountId);
      if (!account) return reply.redirect('/login', 303);
      const csrf = await request.session.csrfToken();
      if (pending.stage === 'enrol' && pending.enrolment) {
        const secret = await binding.sealer.openText(
          parseSealed(pending.enrolment),
          enrolmentAad(account.id),
        );
        const qrDataUrl = await QRCode.toDataURL(
          totpUri({ secret, issuer: binding.issuer, label: account.phone }),
          { margin: 1, width: 200 },
        );
        return reply.page(
          h(DeviceEnrolPage, { look: deps.look, csrf, secret, qrDataUrl, ...extra }),
          status,
        );
      }
      return reply.page(
        h(DeviceCodePage, {
          look: deps.look,
          csrf,
          maskedPhone: maskPhone(account.phone),
          ...extra,
        }),
        status,
      );
    };

    const pendingDevice = (request: FastifyRequest, stage: 'device' | 'enrol') => {
      const pending = pendingLogin(request);
      return pending?.stage === stage ? pending : undefined;
    };

    app.get('/login/device', { schema: { hide: true } }, async (request, reply) => {
      const pending = pendingLogin(request);
      if (!pending?.stage) return reply.redirect('/login', 303);
      return devicePage(request, reply, pending, {});
    });

    app.post(
      '/login/device',
      { schema: { hide: true, body: CodeBody } },
      async (request, reply) => {
        const pending = pendingDevice(request, 'device');
        if (!pending) return reply.redirect('/login', 303);
        const key = limiterKey(pending.accountId);
        const refused = await refuseIfLocked(request, reply, key, (error) =>
          devicePage(request, reply, pending, { error }, 429),
        );
        if (refused) return refused;
        const check = await deps.codes.verify(
          pending.accountId,
          DEVICE_CODE_PURPOSE,
          (request.body as { code: string }).code,
        );
        if (!check.ok) {
          const locked = await countFailure(request, key);
          await emit({
            type: locked ? 'login.locked' : 'login.code_failed',
            accountId: pending.accountId,
            ip: request.ip,
          });
          if (locked) {
            await request.session.destroy();
            return loginPage(request, reply, { error: LOCKED }, 429);
          }
          return devicePage(request, reply, pending, { error: CODE_FAILURES[check.reason] }, 401);
        }
        const secret = createTotpSecret();
        const next: PendingLogin = {
          ...pending,
          stage: 'enrol',
          enrolment: serializeSealed(
            await binding.sealer.seal(secret, enrolmentAad(pending.accountId)),
          ),
        };
        await request.session.setData({ pendingLogin: next });
        return devicePage(request, reply, next, {});
      },
    );

    app.post(
      '/login/device/totp',
      { schema: { hide: true, body: CodeBody } },
      async (request, reply) => {
        const pending = pendingDevice(request, 'enrol');
        if (!pending?.enrolment) return reply.redirect('/login', 303);
        const key = limiterKey(pending.accountId);
        const refused = await refuseIfLocked(request, reply, key, (error) =>
          devicePage(request, reply, pending, { error }, 429),
        );
        if (refused) return refused;
        const account = await deps.loadAccount(pending.accountId);
        if (!account || account.blocked) {
          await request.session.destroy();
          return reply.redirect('/login', 303);
        }
        const secret = await binding.sealer.openText(
          parseSealed(pending.enrolment),
          enrolmentAad(account.id),
        );
        const step = verifyTotp(secret, (request.body as { code: string }).code, deps.clock.now());
        if (step === null) {
          const locked = await countFailure(request, key);
          if (locked) {
            await request.session.destroy();
            return loginPage(request, reply, { error: LOCKED }, 429);
          }
          return devicePage(
            request,
            reply,
            pending,
            { error: 'Код не подошёл. Проверьте время на телефоне и введите новый код.' },
            401,
          );
        }
        const id = ensureDeviceId(request, reply, deps.device!);
        await binding.reenrol(account.id, { secret, deviceHash: deviceHash(id), step });
        await emit({ type: 'login.device_reenrolled', accountId: account.id, ip: request.ip });
        return completeLogin(request, reply, account, {
          accountId: account.id,
          method: 'totp',
          startedAt: pending.startedAt,
          next: pending.next,
        });
      },
    );

    app.post(
      '/login/device/resend',
      { schema: { hide: true, body: CsrfOnly } },
      async (request, reply) => {
        const pending = pendingDevice(request, 'device');
        if (!pending) return reply.redirect('/login', 303);
        const wait = await resendWait(pending.accountId, DEVICE_CODE_PURPOSE);
        if (wait > 0) {
          return devicePage(
            request,
            reply,
            pending,
            { error: `Новый код можно запросить через ${Math.ceil(wait / 1000)} с.` },
            429,
          );
        }
        const account = await deps.loadAccount(pending.accountId);
        if (!account) return reply.redirect('/login', 303);
        await sendDeviceCode(account);
        return devicePage(request, reply, pending, { notice: 'Новый код отправлен.' });
      },
    );
  }

  app.post('/logout', { schema: { hide: true, body: CsrfOnly } }, async (request, reply) => {
    await request.session.destroy();
    return reply.redirect('/login', 303);
  });
}

const CODE_FAILURES = {
  wrong: 'Неверный код.',
  expired: 'Срок действия кода истёк. Запросите новый код.',
  missing: 'Код больше не действует. Запросите новый код.',
  exhausted: 'Код больше не действует: слишком много неверных попыток. Запросите новый код.',
} as const;

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
