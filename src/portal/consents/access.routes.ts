import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { h } from 'preact';
import { Type } from 'typebox';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import type { AuditTree } from '../../platform/audit/audit-tree.js';
import type { Clock } from '../../platform/clock.js';
import { NotFoundError } from '../../platform/http/errors.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import { maskPhone } from '../../platform/login/login-routes.js';
import { checkOperationCode, type Confirmations } from '../citizens/confirmation.js';
import type { CitizenSignedIn } from '../citizens/signed-in.js';
import { isKnownScope, scopeLabel } from '../data-api/scope-catalog.js';
import type { OidcStore } from '../oidc/oidc.store.js';
import {
  AccessLogPage,
  AccessManagementPage,
  RevokeConfirmPage,
  type AccessLogEntry,
  type ConnectionView,
} from './access-pages.js';
import type { Consent, ConsentEvent } from './consent.js';
import type { Webhooks } from '../../platform/webhooks/index.js';
import {
  CONNECTION_FAILURES,
  type ConnectionFailure,
  type ConsentService,
} from './consent.service.js';

const ConsentParams = Type.Object({ consentId: Type.String({ format: 'uuid' }) });

/**
 * «Управление доступом» (J12's list, J5's «Отключить»): the citizen's connected partners,
 * one row each with the newest consent first, and revocation confirmed by a one-time code.
 */
export function registerAccessRoutes(
  app: FastifyInstance,
  deps: {
    consents: ConsentService;
    provider: Provider;
    oidc: OidcStore;
    signedIn: CitizenSignedIn;
    confirmations: Confirmations;
    limiter: AttemptLimiter;
    audit: AuditLog;
    auditTree: AuditTree;
    clock: Clock;
    webhooks: Webhooks;
  },
): void {
  const partnerName = async (clientId: string) =>
    (await deps.provider.Client.find(clientId))?.clientName ?? clientId;

  const accessPage = async (request: FastifyRequest, reply: FastifyReply, notice?: string) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return reply;
    const byClient = new Map<string, Consent[]>();
    for (const consent of await deps.consents.listForCitizen(ctx.citizenId)) {
      byClient.set(consent.clientId, [...(byClient.get(consent.clientId) ?? []), consent]);
    }
    const connections: ConnectionView[] = [];
    for (const [clientId, consents] of byClient) {
      const [latest, ...earlier] = consents;
      const events = await timeline(latest!);
      const failed = events.find((e) => e.type === 'connection_failed');
      const reason = failed?.details.reason as ConnectionFailure | undefined;
      connections.push({
        clientId,
        partnerName: await partnerName(clientId),
        consent: latest!,
        scopeLabels: latest!.scopes.map((s) => (isKnownScope(s) ? scopeLabel(s) : s)),
        events,
        earlier,
        failure: failed
          ? (CONNECTION_FAILURES[reason ?? 'REFUSED'] ?? CONNECTION_FAILURES.REFUSED)
          : undefined,
      });
    }
    return reply.page(
      h(AccessManagementPage, { chrome: ctx.chrome, csrf: ctx.csrf, connections, notice }),
    );
  };

  /**
   * The consent's history and, once it has ended, when the partner's systems received the
   * news (the webhook delivery): revoked → acknowledged → deletion confirmed.
   */
  async function timeline(consent: Consent): Promise<ConsentEvent[]> {
    const events = await deps.consents.events(consent.id);
    if (consent.status === 'revoked' || consent.status === 'expired') {
      const at = await deps.webhooks.firstDelivery(
        consent.clientId,
        `consent.${consent.status}`,
        'consent_id',
        consent.id,
      );
      if (at)
        events.push({
          consentId: consent.id,
          type: 'acknowledged',
          at,
          actor: 'partner',
          details: {},
        });
    }
    return events.sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  app.get('/access', { schema: { hide: true } }, async (request, reply) =>
    accessPage(
      request,
      reply,
      (request.query as { requested?: string }).requested === '1'
        ? 'Подключение подтверждено. Сервис получил запрос; статус сменится на «Активно», когда он найдёт вас среди своих клиентов.'
        : undefined,
    ),
  );

  // Pause stops every read at once (the data API wants an active consent); the partner
  // keeps what it stored and is told. Resume lets it read again until the same end date.
  for (const [action, notice] of [
    ['pause', (name: string) => `Доступ сервиса «${name}» приостановлен.`],
    ['resume', (name: string) => `Доступ сервиса «${name}» возобновлён.`],
  ] as const) {
    app.post(
      `/access/:consentId/${action}`,
      {
        schema: {
          hide: true,
          params: ConsentParams,
          body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }),
        },
      },
      async (request, reply) => {
        const ctx = await deps.signedIn(request, reply);
        if (!ctx) return reply;
        const consent = await ownConsent(
          ctx.citizenId,
          (request.params as { consentId: string }).consentId,
        );
        const changed = await deps.consents[action](consent.id, ctx.citizenId);
        if (!changed) return reply.redirect('/access', 303);
        await deps.audit.append({
          actor: `citizen:${ctx.citizenId}`,
          action: `consent.${action === 'pause' ? 'paused' : 'resumed'}`,
          subject: `consent:${consent.id}`,
          details: { client: consent.clientId },
        });
        return accessPage(request, reply, notice(await partnerName(consent.clientId)));
      },
    );
  }

  const CATEGORY: Record<string, string> = {
    person: 'Основные сведения (ФИО, дата рождения, СНИЛС, ИНН)',
    docs: 'Паспорт',
    addrs: 'Адреса',
    ctts: 'Телефон и электронная почта',
    orders: 'Заявления на госуслуги',
    payments: 'Выплаты и льготы',
  };

  /** Every data read under the citizen's consents, from the audit log; optionally one partner. */
  async function accessLog(
    citizenId: string,
    clientId: string | undefined,
  ): Promise<AccessLogEntry[]> {
    const consents = (await deps.consents.listForCitizen(citizenId)).filter(
      (c) => !clientId || c.clientId === clientId,
    );
    const byId = new Map(consents.map((c) => [`consent:${c.id}`, c]));
    const names = new Map<string, string>();
    const entries: AccessLogEntry[] = [];
    for (const row of await deps.audit.listForSubjects([...byId.keys()], 'data.read')) {
      const consent = byId.get(row.subject!)!;
      if (!names.has(consent.clientId))
        names.set(consent.clientId, await partnerName(consent.clientId));
      const details = row.details as { resource?: string; fields?: string[] };
      entries.push({
        at: new Date(row.at),
        clientId: consent.clientId,
        partnerName: names.get(consent.clientId)!,
        consentId: consent.id,
        category: CATEGORY[details.resource ?? ''] ?? String(details.resource),
        fields: details.fields ?? [],
        leafIndex: Number(row.leaf_index),
      });
    }
    return entries;
  }

  // J12: the proof that a read is in the signed, append-only audit log (docs/audit-log.md).
  app.get(
    '/access/log/proof/:index',
    {
      schema: {
        hide: true,
        params: Type.Object({ index: Type.String({ pattern: '^[0-9]{1,15}$' }) }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const index = Number((request.params as { index: string }).index);
      const entry = await deps.audit.byLeafIndex(index);
      // Only reads under the citizen's own consents: anything else is «not found».
      if (entry?.action !== 'data.read' || !entry.subject?.startsWith('consent:')) {
        throw new NotFoundError();
      }
      await ownConsent(ctx.citizenId, entry.subject.slice('consent:'.length));
      const proof = await deps.auditTree.proveEntry(index);
      if (!proof) throw new NotFoundError();
      return reply.header('cache-control', 'no-store').send(proof);
    },
  );

  const LogQuery = Type.Object({ client: Type.Optional(Type.String({ maxLength: 128 })) });

  app.get(
    '/access/log',
    { schema: { hide: true, querystring: LogQuery } },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const selected = (request.query as { client?: string }).client || undefined;
      const clientIds = [
        ...new Set((await deps.consents.listForCitizen(ctx.citizenId)).map((c) => c.clientId)),
      ];
      const partners = await Promise.all(
        clientIds.map(async (id) => ({ clientId: id, name: await partnerName(id) })),
      );
      return reply.page(
        h(AccessLogPage, {
          chrome: ctx.chrome,
          entries: await accessLog(ctx.citizenId, selected),
          partners,
          selected,
        }),
      );
    },
  );

  // The same, as a file the citizen can keep (J12: exportable as JSON).
  app.get(
    '/access/log.json',
    { schema: { hide: true, querystring: LogQuery } },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const entries = await accessLog(
        ctx.citizenId,
        (request.query as { client?: string }).client || undefined,
      );
      return reply
        .header('content-disposition', 'attachment; filename="access-log.json"')
        .header('cache-control', 'no-store')
        .type('application/json; charset=utf-8')
        .send({
          exported_at: deps.clock.now().toISOString(),
          entries: entries.map((e) => ({
            at: e.at.toISOString(),
            partner: { client_id: e.clientId, name: e.partnerName },
            consent_id: e.consentId,
            category: e.category,
            fields: e.fields,
            leaf_index: e.leafIndex,
          })),
        });
    },
  );

  /** The citizen's own live consent, or 404: nobody learns of others' consents. */
  async function ownConsent(citizenId: string, consentId: string) {
    const consent = await deps.consents.get(consentId);
    if (!consent || consent.citizenId !== citizenId) throw new NotFoundError();
    return consent;
  }

  async function confirmPage(
    request: FastifyRequest,
    reply: FastifyReply,
    consent: Consent,
    error?: string,
    status = 200,
  ) {
    const ctx = (await deps.signedIn(request, reply))!;
    return reply.page(
      h(RevokeConfirmPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        consentId: consent.id,
        partnerName: await partnerName(consent.clientId),
        method: ctx.citizen.secondFactor,
        maskedPhone: maskPhone(ctx.personal.phone),
        error,
      }),
      status,
    );
  }

  app.post(
    '/access/:consentId/revoke',
    {
      schema: {
        hide: true,
        params: ConsentParams,
        body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const consent = await ownConsent(
        ctx.citizenId,
        (request.params as { consentId: string }).consentId,
      );
      if (!['pending', 'active', 'paused'].includes(consent.status))
        return reply.redirect('/access', 303);
      const name = await partnerName(consent.clientId);
      await deps.confirmations.send(
        { id: ctx.citizenId, secondFactor: ctx.citizen.secondFactor, phone: ctx.personal.phone },
        `revoke:${consent.id}`,
        (code) => ({
          subject: 'Код для отключения доступа',
          text: `Госуслуги: код ${code} для отключения доступа сервиса «${name}». Никому не сообщайте его.`,
        }),
      );
      return confirmPage(request, reply, consent);
    },
  );

  app.post(
    '/access/:consentId/revoke/confirm',
    {
      schema: {
        hide: true,
        params: ConsentParams,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          code: Type.String({ maxLength: 16 }),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const consent = await ownConsent(
        ctx.citizenId,
        (request.params as { consentId: string }).consentId,
      );
      const checked = await checkOperationCode(
        deps,
        { id: ctx.citizenId, secondFactor: ctx.citizen.secondFactor },
        `revoke:${consent.id}`,
        (request.body as { code: string }).code,
      );
      if (!checked.ok) return confirmPage(request, reply, consent, checked.message, checked.status);
      const revoked = await deps.consents.revokeByCitizen(consent.id, ctx.citizenId);
      if (revoked?.grantId) {
        // The consent is over from the moment the line above committed; now its tokens go.
        await deps.oidc.removeGrant(revoked.grantId);
      }
      await deps.audit.append({
        actor: `citizen:${ctx.citizenId}`,
        action: 'consent.revoked',
        subject: `consent:${consent.id}`,
        details: { client: consent.clientId },
      });
      return accessPage(
        request,
        reply,
        `Доступ сервиса «${await partnerName(consent.clientId)}» отключён.`,
      );
    },
  );
}
