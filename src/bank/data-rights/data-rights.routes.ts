import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { Type } from 'typebox';
import type { Clock } from '../../platform/clock.js';
import { recordAad, serializeSealed, type Sealer } from '../../platform/crypto/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { SignedIn } from '../customers/signed-in.js';
import type { PortalLinkService } from '../portal-access/portal-link.service.js';
import type { DataRequestStore } from './data-request.store.js';
import { DataRightsPage } from './data-rights.pages.js';

/** J12 at the bank: the customer exports, asks to correct, or deletes their data. */
export function registerDataRightsRoutes(
  app: FastifyInstance,
  deps: {
    signedIn: SignedIn;
    links: PortalLinkService;
    requests: DataRequestStore;
    sealer: Sealer;
    clock: Clock;
    ids: IdGenerator;
  },
): void {
  const record = (
    customerId: string,
    kind: 'export' | 'correction' | 'deletion',
    status: 'done' | 'received',
    details: string | null = null,
  ) =>
    deps.requests.insert({
      id: deps.ids.uuid(),
      customer_id: customerId,
      kind,
      details,
      status,
      created_at: deps.clock.now(),
    });

  const page = async (
    request: FastifyRequest,
    reply: FastifyReply,
    extra: { notice?: string; error?: string } = {},
    status = 200,
  ) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return reply;
    return reply.page(
      h(DataRightsPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        requests: await deps.requests.list(ctx.customer.id),
        ...extra,
      }),
      status,
    );
  };

  app.get('/profile/data', { schema: { hide: true } }, async (request, reply) =>
    page(request, reply),
  );

  app.get('/profile/data/export.json', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return reply;
    const link = await deps.links.view(ctx.customer.id);
    await record(ctx.customer.id, 'export', 'done');
    return reply
      .header('content-disposition', 'attachment; filename="my-bank-data.json"')
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send({
        exported_at: deps.clock.now().toISOString(),
        customer: { login: ctx.customer.username, ...ctx.customer.personal },
        gosuslugi: link
          ? {
              consent_id: link.consentId,
              scopes: link.scopes,
              valid_until: link.consentExpiresAt.toISOString(),
              received_at: link.dataFetchedAt.toISOString(),
              data: link.data,
            }
          : null,
        // What happened to earlier links (J5): consent ids, what and when; no values.
        gosuslugi_history: (await deps.links.history(ctx.customer.id, 1000)).map((e) => ({
          consent_id: e.consent_id,
          event: e.kind,
          at: new Date(e.at).toISOString(),
        })),
      });
  });

  app.post(
    '/profile/data/correction',
    {
      schema: {
        hide: true,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          what: Type.String({ minLength: 1, maxLength: 2000 }),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const id = deps.ids.uuid();
      const sealed = serializeSealed(
        await deps.sealer.seal(
          (request.body as { what: string }).what,
          recordAad('data_requests', id, 'details'),
        ),
      );
      await deps.requests.insert({
        id,
        customer_id: ctx.customer.id,
        kind: 'correction',
        details: sealed,
        status: 'received',
        created_at: deps.clock.now(),
      });
      return page(request, reply, {
        notice: 'Запрос на исправление принят. Мы ответим в течение 48 часов.',
      });
    },
  );

  app.post(
    '/profile/data/delete',
    { schema: { hide: true, body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }) } },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      try {
        await deps.links.unlink(ctx.customer.id);
      } catch (err) {
        if (err instanceof AppError)
          return page(request, reply, { error: err.userMessage }, err.status);
        throw err;
      }
      await record(ctx.customer.id, 'deletion', 'received');
      return page(request, reply, {
        notice:
          'Данные, полученные с Госуслуг, удалены, доступ к ним отозван. Остальные данные будут удалены по истечении срока хранения, установленного законом.',
      });
    },
  );
}
