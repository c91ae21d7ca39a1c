import { readFile } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { createHttpApp } from '../platform/http/app-factory.js';
import { createSessionStore, type SessionTables } from '../platform/http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../platform/limits/attempt-limiter.js';
import { registerLoginRoutes, type LoginEvent } from '../platform/login/login-routes.js';
import { registerDevOutbox } from '../platform/notify/dev-outbox.routes.js';
import { createOneTimeCodes, type OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceRuntime } from '../platform/runtime/service-runtime.js';
import { createCitizenService } from './citizens/citizen.service.js';
import { createCitizenStore, type CitizenTables } from './citizens/citizen.store.js';
import { registerCitizenRoutes } from './citizens/citizen.routes.js';
import { createCitizenNotices, createConfirmations } from './citizens/confirmation.js';
import { createSignedIn } from './citizens/signed-in.js';
import { createWebhooks, type WebhookTables } from '../platform/webhooks/index.js';
import { registerAccessRoutes } from './consents/access.routes.js';
import type { PortalDB } from './db.js';
import type { FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import { BadRequestError } from '../platform/http/errors.js';
import { createAuditLog, type AuditTables } from '../platform/audit/audit-log.js';
import { createApiApp } from '../platform/http/api-app-factory.js';
import { mountRawHandler } from '../platform/http/provider-mount.js';
import { createMtlsServerOptions } from '../platform/mtls/index.js';
import type { Pki } from '../platform/pki/index.js';
import { loadOrCreateServiceKey, type ServiceKeyTables } from '../platform/runtime/service-keys.js';
import { consentNotice } from './consents/consent-notices.js';
import { registerConnectRoutes } from './consents/connect.routes.js';
import { registerConsentApiRoutes } from './partner-api/consent-api.routes.js';
import { createConsentService } from './consents/consent.service.js';
import { createConsentStore, type ConsentTables } from './consents/consent.store.js';
import { createCitizenRecordService } from './data-api/citizen-records.service.js';
import type { CitizenRecordTables } from './data-api/citizen-records.store.js';
import { registerInteractionRoutes } from './oidc/interaction.routes.js';
import { createOidcStore, type OidcTables } from './oidc/oidc.store.js';
import { createProvider, dataApiResource, pairwiseSubject } from './oidc/provider.js';
import { loadSigningKeys } from './oidc/signing-keys.js';
import { createTokenVerifier } from './partner-api/access-checks.js';
import { createDpopChecker, deleteExpiredProofs, type DpopTables } from './partner-api/dpop.js';
import { registerPartnerApiRoutes } from './partner-api/partner-api.routes.js';
import { registerWebhookDeliveryRoutes } from './partner-api/webhook-deliveries.routes.js';
import { registerAdminApi } from './partners/admin-api.routes.js';
import { createPartnerService } from './partners/partner.service.js';
import { createPartnerStore, type PartnerTables } from './partners/partner.store.js';

export const PORTAL_SITE = 'Госуслуги · песочница';
const DATA_API_GUIDE = new URL('../../docs/data-api.md', import.meta.url);

export interface PortalOptions {
  /** The partner CA and listener certificate; without them there is no partner listener. */
  pki?: Pki | undefined;
  /** Token for the loopback admin API (`soglasie partner add`); without it, no admin API. */
  adminToken?: string | undefined;
}

/**
 * Builds the portal on a runtime: the web app (pages, login, OIDC browser endpoints) and,
 * given a PKI, the partner app for the mTLS listener (token endpoint, PAR, data API).
 * Neither listens.
 */
export async function buildPortalApp(
  runtime: ServiceRuntime<PortalDB>,
  options: PortalOptions = {},
) {
  const { config, clock, ids, db } = runtime;
  const look = { site: PORTAL_SITE, theme: 'portal' as const, demo: config.demo };
  const secure = config.mode === 'production';

  const app = await createHttpApp({
    service: 'portal',
    look,
    logger: runtime.logger,
    clock,
    sessions: createSessionStore(db as unknown as Kysely<SessionTables>),
    secureCookies: secure,
    trustedProxies: config.trustedProxies,
    health: () => runtime.database.ping(),
  });

  const citizens = createCitizenService({
    store: createCitizenStore(db as unknown as Kysely<CitizenTables>),
    sealer: runtime.sealer,
    lookupKey: runtime.lookupKey,
    clock,
    ids,
  });

  const codes = createOneTimeCodes(db as unknown as Kysely<OneTimeCodeTables>, clock, ids);
  const limiter = createAttemptLimiter(db as unknown as Kysely<AttemptTables>, clock);
  registerLoginRoutes(app, {
    look,
    clock,
    codes,
    limiter,
    notifier: runtime.notifier,
    findAccount: async (identifier) => {
      const id = await citizens.findIdByIdentifier(identifier);
      return id ? citizens.loginAccount(id) : undefined;
    },
    loadAccount: (id) => citizens.loginAccount(id),
    useTotpStep: (id, step) => citizens.useTotpStep(id, step),
    identifierLabel: 'Телефон, почта или СНИЛС',
    identifierHint: 'Например, +7 999 000-00-01',
    smsSender: 'Госуслуги',
    homePath: '/profile',
    onEvent: (event: LoginEvent) => {
      // Ids only: who tried is personal data we do not write to logs.
      runtime.logger.info(
        { event: event.type, account: 'accountId' in event ? event.accountId : undefined },
        'login event',
      );
    },
  });

  const signedIn = createSignedIn(citizens, look);
  registerCitizenRoutes(app, {
    citizens,
    signedIn,
    sealer: runtime.sealer,
    look,
    codes,
    limiter,
    notifier: runtime.notifier,
  });
  if (runtime.outbox) registerDevOutbox(app, runtime.outbox);

  // Consent and data access.
  const records = createCitizenRecordService({
    db: db as unknown as Kysely<CitizenRecordTables>,
    sealer: runtime.sealer,
    clock,
    ids,
  });
  // Partners hear of consent changes through signed webhooks, queued in the same
  // transaction as the change (transactional outbox).
  const webhooks = createWebhooks({
    db: db as unknown as Kysely<WebhookTables>,
    sealer: runtime.sealer,
    clock,
    ids,
    allowPrivateUrls: config.mode !== 'production',
  });
  const notifyCitizen = createCitizenNotices({ citizens, notifier: runtime.notifier });
  // Resolved lazily: the provider is built after the consent service.
  let partnerNameOf = async (clientId: string) => clientId;
  const consents = createConsentService({
    store: createConsentStore(db as unknown as Kysely<ConsentTables>),
    clock,
    ids,
    afterChange: async (type, consent) => {
      const partner = await partnerNameOf(consent.clientId);
      const [subject, text] = consentNotice(type, consent, partner);
      await notifyCitizen(consent.citizenId, subject, text);
    },
    announce: async (trx, type, consent) => {
      await webhooks.enqueue(trx as unknown as Kysely<WebhookTables>, consent.clientId, type, {
        consent_id: consent.id,
        status: consent.status,
        scopes: consent.scopes,
        expires_at: consent.expiresAt.toISOString(),
        // J1: the citizen started it on the portal; take its token with the consent grant.
        origin: consent.origin,
        ...(consent.applicationRef ? { application_ref: consent.applicationRef } : {}),
      });
    },
  });
  const audit = createAuditLog(db as unknown as Kysely<AuditTables>, clock);
  const oidcStore = createOidcStore(db as unknown as Kysely<OidcTables>);
  const jwks = await loadSigningKeys(oidcStore, runtime.sealer, clock);
  const issuer = config.portal.publicUrl;
  const resource = dataApiResource(config.portal.mtlsUrl);
  const pairwiseKey = await serviceKey(runtime, 'pairwise-subjects');
  const provider = createProvider({
    issuer,
    mtlsUrl: config.portal.mtlsUrl,
    store: oidcStore,
    clock,
    jwks,
    cookieKeys: [(await serviceKey(runtime, 'oidc-cookies')).toString('base64url')],
    secureCookies: secure,
    pairwiseKey,
    citizens,
    consents,
  });
  partnerNameOf = async (clientId) =>
    (await provider.Client.find(clientId))?.clientName ?? clientId;
  const providerHandler = provider.callback();
  await mountRawHandler(app, providerHandler, [
    ['GET', '/.well-known/openid-configuration'],
    ['GET', '/jwks'],
    ['GET', '/auth'],
    ['GET', '/auth/:uid'],
  ]);
  // Partners authenticate with certificates: these endpoints live on the mTLS listener.
  for (const path of ['/token', '/request', '/token/introspection', '/token/revocation', '/me']) {
    app.route({
      method: ['GET', 'POST'],
      url: path,
      schema: { hide: true },
      config: { csrf: false },
      handler: async (_request, reply) =>
        reply.status(400).send({
          error: 'invalid_request',
          error_description: `Use the mTLS endpoint ${config.portal.mtlsUrl}${path} (mtls_endpoint_aliases in the discovery document).`,
        }),
    });
  }
  const confirmations = createConfirmations({ citizens, codes, notifier: runtime.notifier, clock });
  registerAccessRoutes(app, {
    consents,
    provider,
    oidc: oidcStore,
    signedIn,
    confirmations,
    limiter,
    audit,
    clock,
    webhooks,
  });
  // The sandbox's integration guide, linked from the discovery document.
  app.get('/docs/data-api', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('text/markdown; charset=utf-8').send(await readFile(DATA_API_GUIDE, 'utf8')),
  );
  registerInteractionRoutes(app, {
    provider,
    resource,
    look,
    clock,
    ids,
    citizens,
    consents,
    records,
    confirmations,
    limiter,
    audit: (entry) => audit.append(entry),
  });

  const partners = options.pki
    ? createPartnerService({
        partners: createPartnerStore(db as unknown as Kysely<PartnerTables>),
        oidc: oidcStore,
        authority: options.pki.authority,
        clock,
        ids,
        allowHttpRedirects: config.mode !== 'production',
      })
    : undefined;
  if (partners) {
    registerConnectRoutes(app, {
      provider,
      resource,
      partners,
      consents,
      records,
      signedIn,
      confirmations,
      limiter,
      audit,
      sealer: runtime.sealer,
      clock,
      ids,
    });
  }
  if (partners && options.adminToken) {
    registerAdminApi(app, {
      token: options.adminToken,
      partners,
      caPem: options.pki!.caPem,
      issuer,
      mtlsUrl: config.portal.mtlsUrl,
    });
  }

  let partnerApi: FastifyInstance | undefined;
  if (options.pki && partners) {
    partnerApi = createApiApp({
      logger: runtime.logger.child({ listener: 'mtls' }),
      https: createMtlsServerOptions({
        caPem: options.pki.caPem,
        certPem: options.pki.serverCertPem,
        keyPem: options.pki.serverKeyPem,
      }),
      look,
    });
    await mountRawHandler(partnerApi, providerHandler, [
      ['POST', '/token'],
      ['POST', '/request'],
      ['POST', '/token/introspection'],
      ['POST', '/token/revocation'],
      [['GET', 'POST'], '/me'],
    ]);
    registerWebhookDeliveryRoutes(partnerApi, { partners, webhooks, audit });
    registerPartnerApiRoutes(partnerApi, {
      clock,
      publicUrl: config.portal.mtlsUrl,
      checkDpop: createDpopChecker(db as unknown as Kysely<DpopTables>, clock),
      verifyAccessToken: createTokenVerifier({
        jwks: { keys: jwks.keys.map(publicJwk) },
        issuer,
        audience: resource,
        clock,
      }),
      partners,
      consents,
      citizens,
      records,
      audit,
      webhooks,
      verifyPartnerStatement: async (clientId, jws, typ) => {
        const client = await provider.Client.find(clientId);
        const jwks = client?.metadata().jwks as { keys: JWK[] } | undefined;
        if (!jwks)
          throw new BadRequestError('RECEIPT_INVALID', 'The partner has no registered keys.');
        try {
          const { payload } = await jwtVerify(jws, createLocalJWKSet(jwks), {
            issuer: clientId,
            audience: issuer,
            typ,
            algorithms: ['ES256', 'PS256', 'EdDSA'],
            maxTokenAge: '10 minutes',
            clockTolerance: 5,
            currentDate: clock.now(),
          });
          return payload as Record<string, unknown>;
        } catch {
          throw new BadRequestError(
            'RECEIPT_INVALID',
            'The receipt signature or claims are invalid.',
          );
        }
      },
    });
    registerConsentApiRoutes(partnerApi, {
      partners,
      consents,
      sealer: runtime.sealer,
      audit,
      subjectFor: async (clientId, citizenId) => {
        const client = await provider.Client.find(clientId);
        if (!client?.sectorIdentifier) throw new Error(`client ${clientId} has no sector`);
        return pairwiseSubject(pairwiseKey, String(client.sectorIdentifier), citizenId);
      },
      removeGrant: (grantId) => oidcStore.removeGrant(grantId),
    });
  }

  /** Expired OIDC artefacts and DPoP proof ids; run by the housekeeping timer. */
  const sweepExpired = async (now: Date) => {
    // Consents past their end: status «Истёк срок», partner told, tokens removed.
    const expiredGrants = await consents.expireOverdue();
    // J1 connections the partner never took up: «Не выполнено», the grant goes.
    const staleGrants = await consents.failStaleConnections();
    for (const grantId of [...expiredGrants, ...staleGrants]) {
      await oidcStore.removeGrant(grantId);
    }
    // Ended consents without a deletion receipt by the deadline: flagged, citizen told.
    const overdue = await consents.flagOverdueDeletions();
    return {
      consents: expiredGrants.length,
      connections: staleGrants.length,
      overdueDeletions: overdue.length,
      ...(await sweepArtefacts(now)),
    };
  };
  const sweepArtefacts = async (now: Date) => ({
    oidc: await oidcStore.deleteExpired(now),
    dpop: await deleteExpiredProofs(db as unknown as Kysely<DpopTables>, now),
  });

  return Object.assign(app, {
    citizens,
    records,
    consents,
    provider,
    partners,
    partnerApi,
    audit,
    webhooks,
    sweepExpired,
  });
}

async function serviceKey(runtime: ServiceRuntime<PortalDB>, name: string) {
  return loadOrCreateServiceKey(
    runtime.db as unknown as Kysely<ServiceKeyTables>,
    runtime.keyring,
    name,
    runtime.clock.now(),
  );
}

/** The public half of a private JWK. */
function publicJwk(jwk: JWK): JWK {
  const { kty, crv, x, y, n, e, kid, alg, use } = jwk;
  return Object.fromEntries(
    Object.entries({ kty, crv, x, y, n, e, kid, alg, use }).filter(([, v]) => v !== undefined),
  ) as JWK;
}

export type PortalApp = Awaited<ReturnType<typeof buildPortalApp>>;
