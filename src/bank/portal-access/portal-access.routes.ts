import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { Type } from 'typebox';
import { verifyPassword } from '../../platform/crypto/index.js';
import { AppError, TooManyAttemptsError } from '../../platform/http/errors.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import { limiterKey, requireLogin } from '../../platform/login/login-routes.js';
import type { CustomerService } from '../customers/customer.service.js';
import type { SignedIn } from '../customers/signed-in.js';
import {
  BankSecurityPage,
  GosuslugiPage,
  LIVE_SCRIPT_PATH,
  LIVE_STATUS_PATH,
  ReconfirmPage,
} from './portal-pages.js';
import type { LinkView, PendingLink, PortalLinkService } from './portal-link.service.js';

const PENDING_LINK_TTL_MS = 15 * 60_000;

/** The small script that keeps the link status live (no inline script: CSP script-src 'self'). */
const LIVE_SCRIPT = readFileSync(new URL('./assets/portal-link-live.js', import.meta.url), 'utf8');

export function registerPortalAccessRoutes(
  app: FastifyInstance,
  deps: {
    signedIn: SignedIn;
    customers: CustomerService;
    links: PortalLinkService;
    limiter: AttemptLimiter;
    publicUrl: string;
  },
): void {
  const { signedIn, links } = deps;

  /** What the portal ended since the customer last looked, unless a newer link replaced it. */
  const noticesFor = async (customerId: string, link: LinkView | undefined) =>
    (await links.takeNotices(customerId)).filter(
      (n) => !link || new Date(n.at).getTime() > link.linkedAt.getTime(),
    );

  const securityPage = async (
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { notice?: string; error?: string } = {},
    status = 200,
  ) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    const link = await links.view(ctx.customer.id);
    return reply.page(
      h(BankSecurityPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        link,
        configured: links.configured(),
        notices: await noticesFor(ctx.customer.id, link),
        history: await links.history(ctx.customer.id),
        ...extra,
      }),
      status,
    );
  };

  app.get(LIVE_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(LIVE_SCRIPT),
  );

  // J5: what the live script polls. The link's state only: no personal data, no sealed column.
  app.get(LIVE_STATUS_PATH, { schema: { hide: true } }, async (request, reply) => {
    const customerId = requireLogin(request, reply);
    if (!customerId) return reply;
    return reply.header('cache-control', 'no-store').send(await links.state(customerId));
  });

  app.get('/security', { schema: { hide: true } }, async (request, reply) => {
    const linked = (request.query as { linked?: string }).linked === '1';
    return securityPage(
      request,
      reply,
      linked ? { notice: 'Доступ предоставлен. Данные с Госуслуг получены.' } : {},
    );
  });

  app.get('/security/portal/link', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    return reply.page(h(ReconfirmPage, { chrome: ctx.chrome, csrf: ctx.csrf }));
  });

  // J2: re-confirm the bank password, then PAR and off to the portal.
  app.post(
    '/security/portal/link',
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
      const ctx = await signedIn(request, reply);
      if (!ctx) return reply;
      const again = (error: string, status: number) =>
        reply.page(h(ReconfirmPage, { chrome: ctx.chrome, csrf: ctx.csrf, error }), status);
      const key = limiterKey(ctx.customer.id);
      try {
        await deps.limiter.assertAllowed(key);
      } catch (err) {
        if (err instanceof TooManyAttemptsError) return again(err.userMessage, 429);
        throw err;
      }
      const account = await deps.customers.loginAccount(ctx.customer.id);
      if (
        !account ||
        !(await verifyPassword(
          account.passwordHash,
          (request.body as { password: string }).password,
        ))
      ) {
        await deps.limiter.recordFailure(key);
        return again('Неверный пароль.', 401);
      }
      await deps.limiter.reset(key);
      try {
        const { url, pending } = await links.start();
        await request.session.setData({ pendingLink: pending });
        return reply.redirect(url.href, 303);
      } catch (err) {
        if (err instanceof AppError)
          return securityPage(request, reply, { error: err.userMessage }, err.status);
        throw err;
      }
    },
  );

  // The portal sends the browser back here with a code (or an error).
  app.get('/portal/callback', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    const pending = request.session.data.pendingLink as PendingLink | undefined;
    await request.session.setData({ pendingLink: undefined });
    const query = request.query as Record<string, string | undefined>;
    if (!pending || Date.now() - pending.startedAt > PENDING_LINK_TTL_MS) {
      return securityPage(
        request,
        reply,
        { error: 'Срок ожидания ответа Госуслуг истёк. Начните связь заново.' },
        400,
      );
    }
    if (query.error) {
      const error =
        query.error === 'access_denied'
          ? 'Вы отказали в доступе на Госуслугах. Доступ не предоставлен.'
          : 'Госуслуги не предоставили доступ. Попробуйте ещё раз позже.';
      return securityPage(request, reply, { error }, 400);
    }
    try {
      await links.complete(ctx.customer.id, new URL(request.url, deps.publicUrl), pending);
    } catch (err) {
      if (err instanceof AppError)
        return securityPage(request, reply, { error: err.userMessage }, err.status);
      throw err;
    }
    return reply.redirect('/security?linked=1', 303);
  });

  // J6: the customer ends access from the bank side.
  app.post(
    '/security/portal/unlink',
    { schema: { hide: true, body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }) } },
    async (request, reply) => {
      const ctx = await signedIn(request, reply);
      if (!ctx) return reply;
      try {
        const outcome = await links.unlink(ctx.customer.id);
        return securityPage(request, reply, {
          notice:
            outcome === 'unlinked'
              ? 'Доступ к Госуслугам отключён, полученные с портала данные удалены.'
              : 'Профиль не был связан с Госуслугами.',
        });
      } catch (err) {
        if (err instanceof AppError)
          return securityPage(request, reply, { error: err.userMessage }, err.status);
        throw err;
      }
    },
  );

  app.get('/gosuslugi', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    const link = await links.view(ctx.customer.id);
    return reply.page(
      h(GosuslugiPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        link,
        notices: await noticesFor(ctx.customer.id, link),
      }),
    );
  });

  // J3: a live test query — the status of the latest state service application.
  app.post(
    '/gosuslugi/test',
    { schema: { hide: true, body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }) } },
    async (request, reply) => {
      const ctx = await signedIn(request, reply);
      if (!ctx) return reply;
      const outcome = await links.testRequest(ctx.customer.id);
      let result: { ok: boolean; text: string };
      if (outcome.ok) {
        const latest = (
          outcome.orders as {
            elements?: { number: string; serviceName: string; statusText: string }[];
          }
        ).elements?.[0];
        result = latest
          ? {
              ok: true,
              text: `Заявление № ${latest.number} «${latest.serviceName}»: ${latest.statusText}.`,
            }
          : { ok: true, text: 'Связь с Госуслугами работает. Заявлений на госуслуги нет.' };
      } else {
        result = { ok: false, text: outcome.message };
      }
      return reply.page(
        h(GosuslugiPage, {
          chrome: ctx.chrome,
          csrf: ctx.csrf,
          link: await links.view(ctx.customer.id),
          result: result as never,
        }),
        outcome.ok ? 200 : 502,
      );
    },
  );
}
