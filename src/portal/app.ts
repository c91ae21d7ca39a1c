import { readFile } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { createHttpApp } from '../platform/http/app-factory.js';
import { createSessionStore, type SessionTables } from '../platform/http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../platform/limits/attempt-limiter.js';
import { registerLoginRoutes, type LoginEvent } from '../platform/login/login-routes.js';
import { deviceCookieName } from '../platform/login/device.js';
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
import { AUDIT_PSEUDONYM_KEY, loadAuditSigner } from '../platform/audit/audit-key.js';
import { createAuditTree } from '../platform/audit/audit-tree.js';
import { registerAuditRoutes } from './audit/audit.routes.js';
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
import { createLiveProvider } from './oidc/live-provider.js';
import { dataApiResource, pairwiseSubject } from './oidc/provider.js';
import { createSigningKeys, JWKS_MAX_AGE_SECONDS } from './oidc/signing-keys.js';
import { createTokenVerifier } from './partner-api/access-checks.js';
import { createDpopChecker, deleteExpiredProofs, type DpopTables } from './partner-api/dpop.js';
import { registerPartnerApiRoutes } from './partner-api/partner-api.routes.js';
import { registerWebhookDeliveryRoutes } from './partner-api/webhook-deliveries.routes.js';
import { registerAdminApi } from './partners/admin-api.routes.js';
import {
  createCertificateRevocations,
  refuseRevokedCertificates,
} from './partners/certificate-revocation.js';
import {
  createRevocationStore,
  type RevocationTables,
} from './partners/certificate-revocation.store.js';
import { createPartnerService } from './partners/partner.service.js';
import { createPartnerStore, type PartnerTables } from './partners/partner.store.js';
import { createClientIpResolver } from '../platform/http/client-ip.js';
import {
  openCounterStore,
  type RateLimitCounterTables,
} from '../platform/limits/window-counters.js';
import { createPartnerRateLimit } from './partner-api/rate-limit.js';
import { registerBlockRoutes } from './security/blocks.routes.js';
import { createIpBlockService } from './security/ip-block.service.js';
import { createIpBlockStore, type IpBlockTables } from './security/ip-block.store.js';
import path from 'node:path';
import {
  ANOMALY_CONFIG_FILE,
  loadAnomalyConfig,
  resolveAnomalyConfig,
  type AnomalyOverrides,
} from './security/anomaly-config.js';
import {
  createAnomalyService,
  LOGIN_BLOCKED_MESSAGE,
  type AnomalyService,
} from './security/anomaly.service.js';
import type { SecurityTables } from './security/anomaly.store.js';
import { createAuditFeed } from './security/audit-feed.store.js';
import { openCountryLookup } from './security/geo.js';
import { registerSecurityCenterRoutes } from './security/security-center.routes.js';

export const PORTAL_SITE = 'Госуслуги · песочница';
const DATA_API_GUIDE = new URL('../../docs/data-api.md', import.meta.url);

export interface PortalOptions {
  /** The partner CA and listener certificate; without them there is no partner listener. */
  pki?: Pki | undefined;
  /** Token for the loopback admin API (`soglasie partner add`); without it, no admin API. */
  adminToken?: string | undefined;
  /**
   * The anomaly rules (docs/security.md); default: `<data dir>/anomaly-rules.json` over
   * the built-in defaults. Tests and benchmarks pass overrides here instead.
   */
  anomaly?: AnomalyOverrides | undefined;
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
  // The browser-facing side is HTTPS when its public URL is (always in production):
  // then HSTS, and Secure cookies (sessions and oidc-provider's), never over plain HTTP.
  const secure = config.mode === 'production' || config.portal.publicUrl.startsWith('https:');

  const sessionStore = createSessionStore(db as unknown as Kysely<SessionTables>);
  const app = await createHttpApp({
    service: 'portal',
    look,
    logger: runtime.logger,
    clock,
    sessions: sessionStore,
    publicUrl: config.portal.publicUrl,
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
  // The anomaly rules (security/anomaly.service.ts) are built once the consent service and
  // the webhooks exist; the login flow reaches them through this.
  const late: { anomaly?: AnomalyService } = {};
  const device = { cookieName: deviceCookieName('portal', secure), secure };
  /** The account as the login flow sees it, blocked while a security block is in force. */
  const loginAccount = async (id: string) => {
    const account = await citizens.loginAccount(id);
    if (!account || account.blocked || !(await late.anomaly?.isBlocked(id))) return account;
    return { ...account, blocked: true, blockedMessage: LOGIN_BLOCKED_MESSAGE };
  };
  registerLoginRoutes(app, {
    look,
    clock,
    codes,
    limiter,
    notifier: runtime.notifier,
    findAccount: async (identifier) => {
      const id = await citizens.findIdByIdentifier(identifier);
      return id ? loginAccount(id) : undefined;
    },
    loadAccount: loginAccount,
    useTotpStep: (id, step) => citizens.useTotpStep(id, step),
    identifierLabel: 'Телефон, почта или СНИЛС',
    identifierHint: 'Например, +7 999 000-00-01',
    smsSender: 'Госуслуги',
    homePath: '/profile',
    // Per account (5 failures) and per client address (IP_LOGIN_LIMITS): docs/security.md.
    device,
    totpDevices: {
      sealer: runtime.sealer,
      issuer: 'Госуслуги (песочница)',
      reenrol: (id, enrolment) => citizens.reenrolTotp(id, enrolment),
    },
    screenLogin: async (attempt) => late.anomaly?.screenLogin(attempt) ?? { allow: true },
    onEvent: async (event: LoginEvent) => {
      // Ids only: who tried is personal data we do not write to logs.
      runtime.logger.info(
        { event: event.type, account: 'accountId' in event ? event.accountId : undefined },
        'login event',
      );
      await late.anomaly?.onLoginEvent(event);
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
    device,
    notifyCitizen: createCitizenNotices({ citizens, notifier: runtime.notifier }),
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
  // The audit log is a Merkle tree with signed checkpoints and proofs (docs/audit-log.md).
  const audit = createAuditLog(db as unknown as Kysely<AuditTables>, clock, {
    pseudonymKey: await serviceKey(runtime, AUDIT_PSEUDONYM_KEY),
  });
  const auditTree = createAuditTree(db as unknown as Kysely<AuditTables>, {
    signer: await loadAuditSigner(
      db as unknown as Kysely<ServiceKeyTables>,
      runtime.keyring,
      clock.now(),
    ),
    clock,
  });
  registerAuditRoutes(app, { tree: auditTree });
  // Rate limits on the partner API and the IP blocks they lead to (docs/rate-limits.md):
  // counters in Redis, else PostgreSQL, else (embedded PGlite, one process) memory.
  const limits = config.partnerRateLimit;
  const counters = await openCounterStore({
    kind: runtime.database.kind,
    db: db as unknown as Kysely<RateLimitCounterTables>,
    redisUrl: config.redisUrl,
    keyPrefix: limits.keyPrefix,
    logger: runtime.logger,
  });
  app.addHook('onClose', () => counters.close());
  const ipBlocks = createIpBlockService({
    store: createIpBlockStore(db as unknown as Kysely<IpBlockTables>),
    refusals: counters.windows('refusals', limits.blockWindowSeconds),
    audit,
    clock,
    ids,
    policy: {
      blockAfter: limits.blockAfter,
      windowSeconds: limits.blockWindowSeconds,
      blockSeconds: limits.blockSeconds,
    },
  });
  registerBlockRoutes(app, {
    blocks: ipBlocks,
    signedIn,
    partnerName: (clientId) => partnerNameOf(clientId),
  });
  const oidcStore = createOidcStore(db as unknown as Kysely<OidcTables>);
  // Token signing keys: next → current → retired, re-read every 30 s (docs/keys.md).
  const signingKeys = createSigningKeys({
    store: oidcStore,
    sealer: runtime.sealer,
    clock,
    onEvent: (event) =>
      audit.append({
        actor: 'system',
        action: event.type,
        subject: event.type === 'signing_key.created' ? event.kid : event.to,
        details:
          event.type === 'signing_key.created'
            ? { state: event.state }
            : {
                from: event.from,
                next: event.next,
                publish_until: event.publishUntil.toISOString(),
              },
      }),
    onError: (err) => runtime.logger.error({ err }, 'cannot refresh the token signing keys'),
  });
  const issuer = config.portal.publicUrl;
  const resource = dataApiResource(config.portal.mtlsUrl);
  const pairwiseKey = await serviceKey(runtime, 'pairwise-subjects');
  const live = await createLiveProvider({
    signingKeys,
    logger: runtime.logger,
    issuer,
    mtlsUrl: config.portal.mtlsUrl,
    store: oidcStore,
    clock,
    cookieKeys: [(await serviceKey(runtime, 'oidc-cookies')).toString('base64url')],
    secureCookies: secure,
    pairwiseKey,
    citizens,
    consents,
  });
  // Interactions and models: any instance serves them; tokens are signed by live.handler.
  const provider = live.provider;
  partnerNameOf = async (clientId) =>
    (await provider.Client.find(clientId))?.clientName ?? clientId;
  const providerHandler = live.handler;
  await mountRawHandler(
    app,
    providerHandler,
    [
      ['GET', '/.well-known/openid-configuration'],
      ['GET', '/auth'],
      ['GET', '/auth/:uid'],
    ],
    { forwardedProto: secure ? 'https' : 'http' },
  );
  // The JWKS from the database, not the provider: the next key is published before it
  // signs, and a retired one until the tokens it signed have expired (docs/keys.md).
  app.get('/jwks', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('application/jwk-set+json; charset=utf-8')
      .header('cache-control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
      .send({ keys: (await signingKeys.snapshot()).published }),
  );
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
    auditTree,
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
  // Revoked partner certificates are refused on the mTLS listener at once.
  const revocations = partners
    ? createCertificateRevocations({
        partners,
        store: createRevocationStore(db as unknown as Kysely<RevocationTables>),
        clock,
        audit: (entry) => audit.append(entry),
      })
    : undefined;
  if (partners && options.adminToken) {
    registerAdminApi(app, {
      token: options.adminToken,
      partners,
      caPem: options.pki!.caPem,
      issuer,
      mtlsUrl: config.portal.mtlsUrl,
      revocations,
    });
  }

  // Anomaly detection (docs/security.md): rules from the data dir or the options, hooked
  // into the login flow above and the data API below; the security center shows the hits.
  const security = createAnomalyService({
    db: db as unknown as Kysely<SecurityTables & WebhookTables>,
    config: options.anomaly
      ? resolveAnomalyConfig(options.anomaly)
      : loadAnomalyConfig(path.join(config.dataDir, ANOMALY_CONFIG_FILE)),
    clock,
    ids,
    sealer: runtime.sealer,
    geo: await openCountryLookup().catch((err: unknown) => {
      runtime.logger.warn({ err }, 'no IP country database: the geography rule sees no countries');
      return undefined;
    }),
    consents,
    webhooks,
    audit,
    sessions: sessionStore,
    notifyCitizen,
    partnerName: (clientId) => partnerNameOf(clientId),
    partnerByThumbprint: async (thumbprint) => {
      const partner = await partners?.byThumbprint(thumbprint);
      return partner ? { client_id: partner.client_id, name: partner.name } : undefined;
    },
    logger: runtime.logger,
  });
  late.anomaly = security;
  registerSecurityCenterRoutes(app, {
    anomaly: security,
    auditFeed: createAuditFeed(db as never),
    signedIn,
    sessions: sessionStore,
    citizens,
    partnerName: (clientId) => partnerNameOf(clientId),
    clock,
  });

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
      guard: createPartnerRateLimit({
        resolveIp: createClientIpResolver(config.trustedProxies),
        blocks: ipBlocks,
        counters: counters.windows('partner', limits.windowSeconds),
        partners,
        defaultLimit: limits.requests,
        burstPercent: limits.burstPercent,
        clock,
      }),
    });
    // Before any route is added, so that it covers them all (the OAuth endpoints too).
    partnerApi.addHook('onRequest', refuseRevokedCertificates(revocations!, runtime.logger));
    await mountRawHandler(
      partnerApi,
      providerHandler,
      [
        ['POST', '/token'],
        ['POST', '/request'],
        ['POST', '/token/introspection'],
        ['POST', '/token/revocation'],
        [['GET', 'POST'], '/me'],
      ],
      { forwardedProto: 'https' },
    );
    registerWebhookDeliveryRoutes(partnerApi, { partners, webhooks, audit });
    registerPartnerApiRoutes(partnerApi, {
      clock,
      publicUrl: config.portal.mtlsUrl,
      checkDpop: createDpopChecker(db as unknown as Kysely<DpopTables>, clock),
      verifyAccessToken: createTokenVerifier({
        // Every published key, as it changes: tokens of a retired key stay valid.
        jwks: {
          current: async () => (await signingKeys.snapshot()).published,
          reload: async () => (await signingKeys.reload()).published,
        },
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
      anomaly: security,
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
    rateLimitCounters: await counters.sweep(),
    ...(await security.sweep(now)),
  });

  return Object.assign(app, {
    citizens,
    records,
    consents,
    provider,
    partners,
    partnerApi,
    audit,
    auditTree,
    webhooks,
    ipBlocks,
    /** Where the partner API's rate-limit counters live: 'redis', 'postgres' or 'memory'. */
    rateLimitStore: counters.kind,
    anomaly: security,
    signingKeys,
    /** The kid this instance signs tokens with now. */
    signingKid: () => live.signingKid(),
    revocations,
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

export type PortalApp = Awaited<ReturnType<typeof buildPortalApp>>;
