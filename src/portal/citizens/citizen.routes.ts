import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import QRCode from 'qrcode';
import { Type } from 'typebox';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import { ForbiddenError } from '../../platform/http/errors.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import {
  deviceHash,
  ensureDeviceId,
  readDeviceId,
  type DeviceCookieOptions,
} from '../../platform/login/device.js';
import { limiterKey, maskPhone, requireLogin } from '../../platform/login/login-routes.js';
import type { Notifier } from '../../platform/notify/notifier.js';
import type { OneTimeCodes } from '../../platform/otp/one-time-codes.js';
import { totpUri } from '../../platform/otp/totp.js';
import type { LayoutProps } from '../../platform/views/layout.js';
import type { CitizenRole } from './citizen.js';
import { PersonalDataPage, SecurityPage, StaffHomePage } from './citizen-pages.js';
import type { CitizenService } from './citizen.service.js';
import type { CitizenSignedIn } from './signed-in.js';

export interface CitizenRoutesDeps {
  citizens: CitizenService;
  signedIn: CitizenSignedIn;
  sealer: Sealer;
  codes: OneTimeCodes;
  limiter: AttemptLimiter;
  notifier: Notifier;
  look: Pick<LayoutProps, 'site' | 'theme' | 'demo'>;
  /** The device cookie an authenticator app is bound to at enrolment. */
  device: DeviceCookieOptions;
  /** Tells the citizen of changes to how they log in (ASVS 2.2.3). */
  notifyCitizen: (citizenId: string, subject: string, text: string) => Promise<void>;
}

const CsrfOnly = Type.Object({ _csrf: Type.String({ maxLength: 128 }) });

export function registerCitizenRoutes(app: FastifyInstance, deps: CitizenRoutesDeps): void {
  const { citizens } = deps;

  const signedIn = deps.signedIn;
  // A lost notice must not undo the change it reports.
  const notify = (citizenId: string, subject: string, text: string) =>
    deps.notifyCitizen(citizenId, subject, text).catch(() => undefined);

  const securityPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { error?: string; notice?: string; enrolmentSecret?: string },
    status = 200,
  ) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    const enrolment = extra.enrolmentSecret
      ? {
          secret: extra.enrolmentSecret,
          qrDataUrl: await QRCode.toDataURL(
            totpUri({
              secret: extra.enrolmentSecret,
              issuer: 'Госуслуги (песочница)',
              label: ctx.personal.phone,
            }),
            { margin: 1, width: 200 },
          ),
        }
      : undefined;
    const presented = readDeviceId(request, deps.device);
    return reply.page(
      h(SecurityPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        citizen: ctx.citizen,
        thisDevice: presented !== undefined && deviceHash(presented) === ctx.citizen.totpDeviceHash,
        maskedPhone: maskPhone(ctx.personal.phone),
        enrolment,
        error: extra.error,
        notice: extra.notice,
      }),
      status,
    );
  };

  // The secret shown during enrolment waits in the session, sealed, until confirmed.
  const enrolmentAad = (userId: string) => recordAad('http_sessions', userId, 'totp_enrolment');
  const pendingSecret = async (request: FastifyRequest): Promise<string | undefined> => {
    const sealed = request.session.data.totpEnrolment;
    const userId = request.session.userId;
    if (typeof sealed !== 'string' || !userId) return undefined;
    return deps.sealer.openText(parseSealed(sealed), enrolmentAad(userId));
  };

  app.get('/', { schema: { hide: true } }, async (request, reply) =>
    reply.redirect(request.session.userId ? '/profile' : '/login', 303),
  );

  const profilePage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { error?: string; notice?: string } = {},
    status = 200,
  ) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    return reply.page(
      h(PersonalDataPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        citizen: ctx.citizen,
        personal: ctx.personal,
        organizations: await citizens.organizations(ctx.citizen.id),
        emailCodeSent: request.session.data.emailCodeSent === true,
        ...extra,
      }),
      status,
    );
  };

  app.get('/profile', { schema: { hide: true } }, async (request, reply) =>
    profilePage(request, reply),
  );

  app.post(
    '/profile/email/send-code',
    { schema: { hide: true, body: CsrfOnly } },
    async (request, reply) => {
      const userId = requireLogin(request, reply);
      if (!userId) return reply;
      const found = await citizens.personalData(userId);
      if (!found?.personal.email || found.citizen.emailConfirmed)
        return reply.redirect('/profile', 303);
      const { code } = await deps.codes.issue(userId, 'confirm-email');
      await deps.notifier.send({
        to: found.personal.email,
        channel: 'email',
        subject: 'Подтверждение электронной почты',
        text: `Код для подтверждения почты на Госуслугах: ${code}. Если вы его не запрашивали, ничего не делайте.`,
        code,
      });
      await request.session.setData({ emailCodeSent: true });
      return profilePage(request, reply, { notice: 'Код отправлен на вашу почту.' });
    },
  );

  app.post(
    '/profile/email/confirm',
    {
      schema: {
        hide: true,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          code: Type.String({ maxLength: 16 }),
        }),
      },
    },
    async (request, reply) => {
      const userId = requireLogin(request, reply);
      if (!userId) return reply;
      const key = limiterKey(userId);
      await deps.limiter.assertAllowed(key);
      const check = await deps.codes.verify(
        userId,
        'confirm-email',
        (request.body as { code: string }).code,
      );
      if (!check.ok) {
        await deps.limiter.recordFailure(key);
        return profilePage(
          request,
          reply,
          { error: 'Код не подошёл или устарел. Запросите новый код.' },
          400,
        );
      }
      await citizens.setEmailConfirmed(userId);
      await request.session.setData({ emailCodeSent: undefined });
      return profilePage(request, reply, { notice: 'Электронная почта подтверждена.' });
    },
  );

  app.get('/security', { schema: { hide: true } }, async (request, reply) =>
    securityPage(request, reply, {}),
  );

  app.post(
    '/security/totp/start',
    { schema: { hide: true, body: CsrfOnly } },
    async (request, reply) => {
      const userId = requireLogin(request, reply);
      if (!userId) return reply;
      const secret = citizens.newTotpSecret();
      await request.session.setData({
        totpEnrolment: serializeSealed(await deps.sealer.seal(secret, enrolmentAad(userId))),
      });
      return securityPage(request, reply, { enrolmentSecret: secret });
    },
  );

  app.post(
    '/security/totp/confirm',
    {
      schema: {
        hide: true,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          code: Type.String({ maxLength: 16 }),
          device: Type.Optional(Type.String({ maxLength: 64 })),
        }),
      },
    },
    async (request, reply) => {
      const userId = requireLogin(request, reply);
      if (!userId) return reply;
      const secret = await pendingSecret(request);
      if (!secret) {
        return securityPage(
          request,
          reply,
          { error: 'Начните подключение приложения заново.' },
          400,
        );
      }
      const body = request.body as { code: string; device?: string };
      const device = body.device?.trim() || 'Приложение-аутентификатор';
      // The app is bound to this browser: a TOTP login from any other re-enrols (by SMS).
      const boundTo = deviceHash(ensureDeviceId(request, reply, deps.device));
      const result = await citizens.enrollTotp(userId, secret, body.code, device, boundTo);
      if (result === 'wrong-code') {
        return securityPage(
          request,
          reply,
          {
            error: 'Код не подошёл. Проверьте время на телефоне и введите новый код.',
            enrolmentSecret: secret,
          },
          400,
        );
      }
      await request.session.setData({ totpEnrolment: undefined });
      await notify(
        userId,
        'Подключено приложение-аутентификатор',
        'Госуслуги: к вашему аккаунту подключено приложение-аутентификатор; входить с кодом из него можно с устройства, на котором его подключили. Если это были не вы, обратитесь в службу поддержки.',
      );
      return securityPage(request, reply, { notice: 'Приложение-аутентификатор подключено.' });
    },
  );

  app.post(
    '/security/totp/remove',
    {
      schema: {
        hide: true,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          password: Type.String({ maxLength: 256 }),
        }),
      },
    },
    async (request, reply) => {
      const userId = requireLogin(request, reply);
      if (!userId) return reply;
      const result = await citizens.removeTotp(
        userId,
        (request.body as { password: string }).password,
      );
      if (result === 'wrong-password') {
        return securityPage(request, reply, { error: 'Неверный пароль.' }, 400);
      }
      await notify(
        userId,
        'Приложение-аутентификатор отключено',
        'Госуслуги: приложение-аутентификатор отключено, коды для входа снова приходят по SMS. Если это были не вы, обратитесь в службу поддержки.',
      );
      return securityPage(request, reply, { notice: 'Коды для входа снова приходят по SMS.' });
    },
  );

  const staffHome = (role: CitizenRole, path: string, title: string, text: string) =>
    app.get(path, { schema: { hide: true } }, async (request, reply) => {
      const ctx = await signedIn(request, reply);
      if (!ctx) return reply;
      if (!ctx.citizen.roles.includes(role)) {
        throw new ForbiddenError(
          `The ${role} role is required.`,
          'Этот раздел доступен только сотрудникам с соответствующей ролью.',
        );
      }
      return reply.page(h(StaffHomePage, { chrome: ctx.chrome, title, text }));
    });

  // The security center (/security-center) is security/security-center.routes.ts.
  staffHome(
    'admin',
    '/admin',
    'Администрирование',
    'Здесь появятся заявки партнёров, области доступа и отчёты.',
  );
}
