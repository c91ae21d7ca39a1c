import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { h } from 'preact';
import { Type } from 'typebox';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import type { Clock } from '../../platform/clock.js';
import { recordAad, serializeSealed, type Sealer } from '../../platform/crypto/index.js';
import { NotFoundError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import { maskPhone } from '../../platform/login/login-routes.js';
import { checkOperationCode, type Confirmations } from '../citizens/confirmation.js';
import { checkReadiness } from '../citizens/readiness.js';
import type { CitizenSignedIn } from '../citizens/signed-in.js';
import type { CitizenRecordService } from '../data-api/citizen-records.service.js';
import { isKnownScope, scopeLabel as catalogLabel } from '../data-api/scope-catalog.js';
import { saveConsentGrant } from '../oidc/consent-grant.js';
import { ConsentCodePage, ConsentPage, ReadinessPage } from '../oidc/consent-pages.js';
import { chosenScopes, scopeViewsFor } from '../oidc/interaction.routes.js';
import type { PartnerService } from '../partners/partner.service.js';
import type { PartnerTable } from '../partners/partner.store.js';
import { ConnectListPage, ConnectStartPage } from './connect-pages.js';
import { parseConsentRequest, type ConsentService } from './consent.service.js';

const scopeLabel = (scope: string) => (isKnownScope(scope) ? catalogLabel(scope) : scope);
const ClientParams = Type.Object({ clientId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
/** A customer number, contract number or login: letters, digits and a few separators. */
const CLIENT_REF = /^[\p{L}\p{N}][\p{L}\p{N} ._/-]{0,63}$/u;

/** J1 in progress, kept in the portal session between the steps. */
interface PendingConnect {
  clientId: string;
  clientRef: string;
  /** Set once the citizen has chosen the data; the code is bound to this attempt. */
  scopes?: string[];
  attempt?: string;
}

/** Where the clear client reference is sealed: bound to the consent it belongs to. */
export const clientRefAad = (consentId: string) => recordAad('consents', consentId, 'client_ref');

/**
 * J1, «Настройки → Управление доступом → Подключить сервисы»: the citizen picks a partner,
 * enters their identifier there, sees the same consent screen as in J2 and confirms with a
 * one-time code. The consent waits («Ожидает подтверждения сервиса») until the partner,
 * told by `consent.granted`, matches its customer and takes its token (consent grant).
 */
export function registerConnectRoutes(
  app: FastifyInstance,
  deps: {
    provider: Provider;
    resource: string;
    partners: PartnerService;
    consents: ConsentService;
    records: CitizenRecordService;
    signedIn: CitizenSignedIn;
    confirmations: Confirmations;
    limiter: AttemptLimiter;
    audit: AuditLog;
    sealer: Sealer;
    clock: Clock;
    ids: IdGenerator;
  },
): void {
  const requestOf = (partner: PartnerTable) => {
    const request = partner.portal_connect!.request;
    return parseConsentRequest([request], ['openid', ...request.scopes], isKnownScope);
  };

  async function connectable(clientId: string) {
    const partner = await deps.partners.byClientId(clientId);
    if (!partner?.portal_connect || partner.status !== 'active') throw new NotFoundError();
    return partner;
  }

  const pendingOf = (request: FastifyRequest, clientId: string) => {
    const pending = request.session.data.pendingConnect as PendingConnect | undefined;
    return pending?.clientId === clientId ? pending : undefined;
  };

  app.get('/access/connect', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return reply;
    const partners = (await deps.partners.listConnectable()).map((p) => {
      const consentRequest = requestOf(p);
      return {
        clientId: p.client_id,
        name: p.name,
        type: consentRequest.type,
        scopeLabels: consentRequest.scopes.map(scopeLabel),
      };
    });
    return reply.page(h(ConnectListPage, { chrome: ctx.chrome, partners }));
  });

  /** The readiness check (J9) comes first, as in J2; then the identifier form. */
  async function startPage(
    request: FastifyRequest,
    reply: FastifyReply,
    partner: PartnerTable,
    extra: { value?: string; error?: string; status?: number } = {},
  ) {
    const ctx = (await deps.signedIn(request, reply))!;
    const problems = checkReadiness(ctx.citizen, ctx.personal, deps.clock.now());
    if (problems.length > 0) {
      return reply.page(
        h(ReadinessPage, { chrome: ctx.chrome, partnerName: partner.name, problems }),
        409,
      );
    }
    return reply.page(
      h(ConnectStartPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        clientId: partner.client_id,
        partnerName: partner.name,
        label: partner.portal_connect!.client_ref_label,
        ...extra,
      }),
      extra.status ?? 200,
    );
  }

  app.get(
    '/access/connect/:clientId',
    { schema: { hide: true, params: ClientParams } },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const partner = await connectable((request.params as { clientId: string }).clientId);
      return startPage(request, reply, partner);
    },
  );

  async function consentScreen(
    request: FastifyRequest,
    reply: FastifyReply,
    partner: PartnerTable,
    pending: PendingConnect,
    extra: { ticked?: Set<string>; error?: string; status?: number } = {},
  ) {
    const ctx = (await deps.signedIn(request, reply))!;
    const consentRequest = requestOf(partner);
    const base = `/access/connect/${encodeURIComponent(partner.client_id)}`;
    return reply.page(
      h(ConsentPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        uid: partner.client_id,
        partnerName: partner.name,
        request: consentRequest,
        scopes: await scopeViewsFor(
          deps.records,
          { userId: ctx.citizenId, citizen: ctx.citizen, personal: ctx.personal },
          consentRequest,
          extra.ticked,
        ),
        error: extra.error,
        confirmAction: `${base}/confirm`,
        denyAction: `${base}/cancel`,
        clientRef: { label: partner.portal_connect!.client_ref_label, value: pending.clientRef },
      }),
      extra.status ?? 200,
    );
  }

  app.post(
    '/access/connect/:clientId',
    {
      schema: {
        hide: true,
        params: ClientParams,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          client_ref: Type.String({ maxLength: 200 }),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const partner = await connectable((request.params as { clientId: string }).clientId);
      if (checkReadiness(ctx.citizen, ctx.personal, deps.clock.now()).length > 0) {
        return startPage(request, reply, partner);
      }
      const clientRef = (request.body as { client_ref: string }).client_ref
        .normalize('NFKC')
        .trim();
      if (!CLIENT_REF.test(clientRef)) {
        return startPage(request, reply, partner, {
          value: clientRef.slice(0, 64),
          error: `Укажите «${partner.portal_connect!.client_ref_label}»: до 64 букв и цифр, без специальных символов.`,
          status: 400,
        });
      }
      const pending: PendingConnect = { clientId: partner.client_id, clientRef };
      await request.session.setData({ pendingConnect: pending });
      return consentScreen(request, reply, partner, pending);
    },
  );

  app.post(
    '/access/connect/:clientId/confirm',
    {
      schema: {
        hide: true,
        params: ClientParams,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          scope: Type.Optional(
            Type.Union([
              Type.String({ maxLength: 64 }),
              Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
            ]),
          ),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const { clientId } = request.params as { clientId: string };
      const partner = await connectable(clientId);
      const pending = pendingOf(request, clientId);
      if (!pending) return reply.redirect(`/access/connect/${encodeURIComponent(clientId)}`, 303);
      const body = request.body as { scope?: string | string[] };
      const ticked = new Set(
        Array.isArray(body.scope) ? body.scope : body.scope ? [body.scope] : [],
      );
      const chosen = chosenScopes(requestOf(partner), ticked);
      if ('missing' in chosen) {
        return consentScreen(request, reply, partner, pending, {
          ticked,
          error: `Без этих данных сервис не сможет работать: ${chosen.missing.map(scopeLabel).join(', ')}. Их нельзя отключить.`,
          status: 400,
        });
      }
      const attempt = deps.ids.token(12);
      await request.session.setData({
        pendingConnect: { ...pending, scopes: chosen.scopes, attempt },
      });
      await deps.confirmations.send(
        { id: ctx.citizenId, secondFactor: ctx.citizen.secondFactor, phone: ctx.personal.phone },
        `connect:${attempt}`,
        (code) => ({
          subject: 'Код подтверждения подключения',
          text: `Госуслуги: код ${code} для подключения сервиса «${partner.name}». Никому не сообщайте его.`,
        }),
      );
      return codePage(request, reply, partner, chosen.scopes);
    },
  );

  async function codePage(
    request: FastifyRequest,
    reply: FastifyReply,
    partner: PartnerTable,
    scopes: string[],
    error?: string,
    status = 200,
  ) {
    const ctx = (await deps.signedIn(request, reply))!;
    return reply.page(
      h(ConsentCodePage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        uid: partner.client_id,
        partnerName: partner.name,
        method: ctx.citizen.secondFactor,
        maskedPhone: maskPhone(ctx.personal.phone),
        scopeLabels: scopes.map(scopeLabel),
        error,
        approveAction: `/access/connect/${encodeURIComponent(partner.client_id)}/approve`,
      }),
      status,
    );
  }

  app.post(
    '/access/connect/:clientId/approve',
    {
      schema: {
        hide: true,
        params: ClientParams,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          code: Type.String({ maxLength: 16 }),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      const { clientId } = request.params as { clientId: string };
      const partner = await connectable(clientId);
      const pending = pendingOf(request, clientId);
      if (!pending?.scopes || !pending.attempt)
        return reply.redirect(`/access/connect/${encodeURIComponent(clientId)}`, 303);
      const checked = await checkOperationCode(
        deps,
        { id: ctx.citizenId, secondFactor: ctx.citizen.secondFactor },
        `connect:${pending.attempt}`,
        (request.body as { code: string }).code,
      );
      if (!checked.ok)
        return codePage(request, reply, partner, pending.scopes, checked.message, checked.status);
      await request.session.setData({ pendingConnect: undefined });

      const consentRequest = requestOf(partner);
      const consentId = deps.ids.uuid();
      const expiresAt = new Date(
        deps.clock.now().getTime() + consentRequest.durationDays * 86_400_000,
      );
      const grantId = await saveConsentGrant(deps.provider, deps.resource, {
        accountId: ctx.citizenId,
        clientId,
        consentId,
        request: consentRequest,
        approvedScopes: pending.scopes,
        expiresAt,
      });
      await deps.consents.grant({
        id: consentId,
        citizenId: ctx.citizenId,
        clientId,
        grantId,
        request: consentRequest,
        approvedScopes: pending.scopes,
        portal: {
          clientRefSealed: serializeSealed(
            await deps.sealer.seal(pending.clientRef, clientRefAad(consentId)),
          ),
        },
      });
      await deps.audit.append({
        actor: `citizen:${ctx.citizenId}`,
        action: 'consent.granted',
        subject: `consent:${consentId}`,
        details: { client: clientId, scopes: pending.scopes, origin: 'portal' },
      });
      return reply.redirect('/access?requested=1', 303);
    },
  );

  app.post(
    '/access/connect/:clientId/cancel',
    {
      schema: {
        hide: true,
        params: ClientParams,
        body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }),
      },
    },
    async (request, reply) => {
      const ctx = await deps.signedIn(request, reply);
      if (!ctx) return reply;
      await request.session.setData({ pendingConnect: undefined });
      return reply.redirect('/access/connect', 303);
    },
  );
}
