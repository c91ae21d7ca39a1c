import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { h } from 'preact';
import { Type } from 'typebox';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { AttemptLimiter } from '../../platform/limits/attempt-limiter.js';
import { maskPhone } from '../../platform/login/login-routes.js';
import type { LayoutProps } from '../../platform/views/layout.js';
import { fullName, type Citizen, type CitizenPersonalData } from '../citizens/citizen.js';
import type { CitizenService } from '../citizens/citizen.service.js';
import { checkOperationCode, type Confirmations } from '../citizens/confirmation.js';
import { checkReadiness } from '../citizens/readiness.js';
import type { ConsentRequest } from '../consents/consent.js';
import { parseConsentRequest, type ConsentService } from '../consents/consent.service.js';
import type { CitizenRecordService } from '../data-api/citizen-records.service.js';
import {
  isKnownScope,
  previewForScope,
  scopeLabel as catalogLabel,
} from '../data-api/scope-catalog.js';

/** Scopes reaching here were checked against the catalog by parseConsentRequest. */
const scopeLabel = (scope: string) => (isKnownScope(scope) ? catalogLabel(scope) : scope);
import { saveConsentGrant } from './consent-grant.js';
import { ConsentCodePage, ConsentPage, ReadinessPage, type ScopeView } from './consent-pages.js';

export interface InteractionDeps {
  provider: Provider;
  resource: string;
  look: Pick<LayoutProps, 'site' | 'theme' | 'demo'>;
  clock: Clock;
  ids: IdGenerator;
  citizens: CitizenService;
  consents: ConsentService;
  records: CitizenRecordService;
  confirmations: Confirmations;
  limiter: AttemptLimiter;
  audit: (entry: {
    actor: string;
    action: string;
    subject?: string;
    details?: Record<string, unknown>;
  }) => Promise<void>;
}

const CsrfOnly = Type.Object({ _csrf: Type.String({ maxLength: 128 }) });
const Uid = Type.Object({ uid: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });

/** The scopes the citizen chose on the consent screen wait here for the one-time code. */
interface PendingConsent {
  uid: string;
  scopes: string[];
}

class InteractionExpired extends AppError {
  constructor() {
    super(
      'INTERACTION_EXPIRED',
      400,
      'The authorization request has expired or is unknown.',
      'Срок действия запроса на доступ истёк. Вернитесь в приложение сервиса и начните заново.',
    );
  }
}

/**
 * The portal's side of an authorization request: login (our own two-factor login), the
 * account readiness check (J9), the consent screen with real values, and approval
 * confirmed by a one-time code bound to this request.
 */
export function registerInteractionRoutes(app: FastifyInstance, deps: InteractionDeps): void {
  const { provider } = deps;

  async function details(request: FastifyRequest, reply: FastifyReply, uid: string) {
    try {
      const interaction = await provider.interactionDetails(request.raw, reply.raw);
      if (interaction.uid !== uid) throw new InteractionExpired();
      return interaction;
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new InteractionExpired();
    }
  }

  /** Everything the consent screen and its confirmation need, checked afresh each time. */
  async function consentContext(request: FastifyRequest, reply: FastifyReply, uid: string) {
    const interaction = await details(request, reply, uid);
    const userId = request.session.userId;
    const accountId = interaction.session?.accountId;
    if (!userId || !accountId || userId !== accountId) {
      // The portal session changed since the request began: start the login again.
      throw new InteractionExpired();
    }
    const found = await deps.citizens.personalData(userId);
    if (!found) throw new InteractionExpired();
    const params = interaction.params as Record<string, unknown>;
    const clientId = String(params.client_id);
    const client = await provider.Client.find(clientId);
    if (!client) throw new InteractionExpired();
    let rar: unknown;
    if (typeof params.authorization_details === 'string') {
      try {
        rar = JSON.parse(params.authorization_details);
      } catch {
        rar = undefined;
      }
    }
    const consentRequest = parseConsentRequest(
      rar,
      String(params.scope ?? '').split(' '),
      isKnownScope,
    );
    const chrome = {
      ...deps.look,
      user: {
        name: fullName(found.personal),
        csrf: await request.session.csrfToken(),
        logoutAction: '/logout',
      },
    };
    return {
      interaction,
      userId,
      ...found,
      clientId,
      partnerName: client.clientName ?? clientId,
      redirectOrigin: new URL(String(params.redirect_uri)).origin,
      consentRequest,
      chrome,
      csrf: chrome.user.csrf,
    };
  }

  /** The consent forms end in a redirect to the partner: allow that origin as a form target. */
  function allowFormTarget(reply: FastifyReply, origin: string) {
    const csp = String(reply.getHeader('content-security-policy') ?? '');
    reply.header(
      'content-security-policy',
      csp.replace("form-action 'self'", `form-action 'self' ${origin}`),
    );
  }

  const scopeViews = (ctx: Awaited<ReturnType<typeof consentContext>>, chosen?: Set<string>) =>
    scopeViewsFor(deps.records, ctx, ctx.consentRequest, chosen);

  /** The consent screen; after a refused choice, with the citizen's ticks and the reason. */
  async function consentPage(
    reply: FastifyReply,
    ctx: Awaited<ReturnType<typeof consentContext>>,
    uid: string,
    extra: { ticked?: Set<string>; error?: string; status?: number } = {},
  ) {
    allowFormTarget(reply, ctx.redirectOrigin);
    return reply.page(
      h(ConsentPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        uid,
        partnerName: ctx.partnerName,
        request: ctx.consentRequest,
        scopes: await scopeViews(ctx, extra.ticked),
        error: extra.error,
      }),
      extra.status ?? 200,
    );
  }

  app.get('/interaction/:uid', { schema: { hide: true, params: Uid } }, async (request, reply) => {
    const { uid } = request.params as { uid: string };
    const interaction = await details(request, reply, uid);
    if (interaction.prompt.name === 'login') {
      const userId = request.session.userId;
      if (!userId) {
        return reply.redirect(`/login?next=${encodeURIComponent(`/interaction/${uid}`)}`, 303);
      }
      reply.hijack();
      return provider.interactionFinished(
        request.raw,
        reply.raw,
        {
          login: {
            accountId: userId,
            amr: ['pwd', 'otp'],
            ts: Math.floor(deps.clock.now().getTime() / 1000),
          },
        },
        { mergeWithLastSubmission: false },
      );
    }
    const ctx = await consentContext(request, reply, uid);
    const problems = checkReadiness(ctx.citizen, ctx.personal, deps.clock.now());
    if (problems.length > 0) {
      return reply.page(
        h(ReadinessPage, { chrome: ctx.chrome, partnerName: ctx.partnerName, problems }),
        409,
      );
    }
    return consentPage(reply, ctx, uid);
  });

  app.post(
    '/interaction/:uid/confirm',
    {
      schema: {
        hide: true,
        params: Uid,
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
      const { uid } = request.params as { uid: string };
      const ctx = await consentContext(request, reply, uid);
      if (checkReadiness(ctx.citizen, ctx.personal, deps.clock.now()).length > 0) {
        return reply.redirect(`/interaction/${uid}`, 303);
      }
      const body = request.body as { scope?: string | string[] };
      const ticked = new Set(
        Array.isArray(body.scope) ? body.scope : body.scope ? [body.scope] : [],
      );
      const chosen = chosenScopes(ctx.consentRequest, ticked);
      if ('missing' in chosen) {
        return consentPage(reply, ctx, uid, {
          ticked,
          error: `Без этих данных сервис не сможет работать: ${chosen.missing.map(scopeLabel).join(', ')}. Их нельзя отключить.`,
          status: 400,
        });
      }
      allowFormTarget(reply, ctx.redirectOrigin);
      const pending: PendingConsent = { uid, scopes: chosen.scopes };
      await request.session.setData({ pendingConsent: pending });
      const method = ctx.citizen.secondFactor;
      await deps.confirmations.send(
        { id: ctx.userId, secondFactor: method, phone: ctx.personal.phone },
        `consent:${uid}`,
        (code) => ({
          subject: 'Код подтверждения доступа',
          text: `Госуслуги: код ${code} для предоставления доступа сервису «${ctx.partnerName}». Никому не сообщайте его.`,
        }),
      );
      return reply.page(
        h(ConsentCodePage, {
          chrome: ctx.chrome,
          csrf: ctx.csrf,
          uid,
          partnerName: ctx.partnerName,
          method,
          maskedPhone: maskPhone(ctx.personal.phone),
          scopeLabels: chosen.scopes.map(scopeLabel),
        }),
      );
    },
  );

  app.post(
    '/interaction/:uid/approve',
    {
      schema: {
        hide: true,
        params: Uid,
        body: Type.Object({
          _csrf: Type.String({ maxLength: 128 }),
          code: Type.String({ maxLength: 16 }),
        }),
      },
    },
    async (request, reply) => {
      const { uid } = request.params as { uid: string };
      const ctx = await consentContext(request, reply, uid);
      const pending = request.session.data.pendingConsent as PendingConsent | undefined;
      if (!pending || pending.uid !== uid) return reply.redirect(`/interaction/${uid}`, 303);
      const codePage = (error: string, status: number) => {
        allowFormTarget(reply, ctx.redirectOrigin);
        return reply.page(
          h(ConsentCodePage, {
            chrome: ctx.chrome,
            csrf: ctx.csrf,
            uid,
            partnerName: ctx.partnerName,
            method: ctx.citizen.secondFactor,
            maskedPhone: maskPhone(ctx.personal.phone),
            scopeLabels: pending.scopes.map(scopeLabel),
            error,
          }),
          status,
        );
      };
      const checked = await checkOperationCode(
        deps,
        { id: ctx.userId, secondFactor: ctx.citizen.secondFactor },
        `consent:${uid}`,
        (request.body as { code: string }).code.trim(),
      );
      if (!checked.ok) {
        if (checked.wrong) {
          await deps.audit({
            actor: `citizen:${ctx.userId}`,
            action: 'consent.code_failed',
            subject: ctx.clientId,
          });
        }
        return codePage(checked.message, checked.status);
      }

      const consentId = deps.ids.uuid();
      const expiresAt = new Date(
        deps.clock.now().getTime() + ctx.consentRequest.durationDays * 86_400_000,
      );
      const grantId = await saveConsentGrant(provider, deps.resource, {
        accountId: ctx.userId,
        clientId: ctx.clientId,
        consentId,
        request: ctx.consentRequest,
        approvedScopes: pending.scopes,
        expiresAt,
      });
      await deps.consents.grant({
        id: consentId,
        citizenId: ctx.userId,
        clientId: ctx.clientId,
        grantId,
        request: ctx.consentRequest,
        approvedScopes: pending.scopes,
      });
      await deps.audit({
        actor: `citizen:${ctx.userId}`,
        action: 'consent.granted',
        subject: `consent:${consentId}`,
        details: { client: ctx.clientId, scopes: pending.scopes },
      });
      await request.session.setData({ pendingConsent: undefined });
      reply.hijack();
      return provider.interactionFinished(
        request.raw,
        reply.raw,
        { consent: { grantId } },
        {
          mergeWithLastSubmission: true,
        },
      );
    },
  );

  app.post(
    '/interaction/:uid/deny',
    { schema: { hide: true, params: Uid, body: CsrfOnly } },
    async (request, reply) => {
      const { uid } = request.params as { uid: string };
      const interaction = await details(request, reply, uid);
      await deps.audit({
        actor: request.session.userId ? `citizen:${request.session.userId}` : 'anonymous',
        action: 'consent.denied',
        subject: String((interaction.params as { client_id?: unknown }).client_id),
      });
      await request.session.setData({ pendingConsent: undefined });
      reply.hijack();
      return provider.interactionFinished(
        request.raw,
        reply.raw,
        { error: 'access_denied', error_description: 'The citizen refused to grant access.' },
        { mergeWithLastSubmission: false },
      );
    },
  );
}

/** The consent screen's rows: each scope with the citizen's real values, masked. */
export async function scopeViewsFor(
  records: CitizenRecordService,
  who: { userId: string; citizen: Citizen; personal: CitizenPersonalData },
  request: ConsentRequest,
  chosen?: Set<string>,
): Promise<ScopeView[]> {
  const onFile = {
    orders: await records.listOrders(who.userId),
    payments: await records.listPayments(who.userId),
    confirmed: { phone: who.citizen.phoneConfirmed, email: who.citizen.emailConfirmed },
  };
  const optional = new Set(request.optionalScopes);
  return request.scopes.map((scope) => ({
    scope,
    label: scopeLabel(scope),
    required: !optional.has(scope),
    checked: !optional.has(scope) || !chosen || chosen.has(scope),
    preview: isKnownScope(scope) ? previewForScope(scope, who.personal, onFile) : [],
  }));
}

/** Required scopes are always sent; optional ones only if ticked. Nothing else. */
export function chosenScopes(
  request: ConsentRequest,
  ticked: Set<string>,
): { scopes: string[] } | { missing: string[] } {
  const optional = new Set(request.optionalScopes);
  const missing = request.scopes.filter((s) => !optional.has(s) && !ticked.has(s));
  if (missing.length > 0) return { missing };
  return { scopes: request.scopes.filter((s) => !optional.has(s) || ticked.has(s)) };
}
