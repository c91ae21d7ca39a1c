import { X509Certificate } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import Provider, {
  errors,
  type Configuration,
  type KoaContextWithOIDC,
  type ResourceServer,
} from 'oidc-provider';
import { h } from 'preact';
import type { Clock } from '../../platform/clock.js';
import { Alert, Layout } from '../../platform/views/layout.js';
import { renderDocument } from '../../platform/views/render.js';
import { keyedHash } from '../../platform/crypto/index.js';
import type { CitizenService } from '../citizens/citizen.service.js';
import { CONSENT_DETAIL_TYPE } from '../consents/consent.js';
import type { ConsentService } from '../consents/consent.service.js';
import { parseConsentRequest } from '../consents/consent.service.js';
import { claimsByScope, isKnownScope, SCOPES } from '../data-api/scope-catalog.js';
import { accountClaims } from './account-claims.js';
import { registerConsentGrant } from './consent-grant.js';
import { createOidcAdapterClass } from './oidc-adapter.js';
import type { OidcStore } from './oidc.store.js';
import { SIGNING_ALG } from './signing-keys.js';

const PORTAL_SITE_NAME = 'Госуслуги · песочница';

/** The resource indicator (RFC 8707) of the citizen data API; access tokens are for it. */
export const dataApiResource = (mtlsUrl: string) => `${mtlsUrl}/rs`;

/** FAPI 2.0 Security Profile §5.4: only these algorithms. */
const FAPI_ALGS = ['PS256', 'ES256', 'EdDSA'];

export interface ProviderDeps {
  issuer: string;
  mtlsUrl: string;
  store: OidcStore;
  clock: Clock;
  jwks: { keys: object[] };
  cookieKeys: string[];
  secureCookies: boolean;
  pairwiseKey: Buffer;
  citizens: CitizenService;
  consents: ConsentService;
}

/**
 * The portal's authorization server: oidc-provider in the FAPI 2.0 Security Profile.
 * Pushed authorization requests and PKCE S256 are required; clients authenticate with
 * private_key_jwt or tls_client_auth; access tokens are JWTs bound to the client
 * certificate (RFC 8705) or a DPoP key, and carry the consent id.
 */
export function createProvider(deps: ProviderDeps): Provider {
  const resource = dataApiResource(deps.mtlsUrl);
  const dataScopes = SCOPES.filter((s) => s.subject === 'citizen' && s.scope !== 'openid').map(
    (s) => s.scope,
  );

  const resourceServer: ResourceServer = {
    scope: dataScopes.join(' '),
    audience: resource,
    accessTokenTTL: 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: SIGNING_ALG } },
  };

  const configuration: Configuration = {
    adapter: createOidcAdapterClass(deps.store, deps.clock, {
      onGrantRevoked: async (grantId) => {
        await deps.consents.revokeForGrant(
          grantId,
          'system',
          'grant revoked by the authorization server',
        );
      },
    }),
    jwks: deps.jwks as Configuration['jwks'],
    cookies: {
      keys: deps.cookieKeys,
      names: {
        session: 'portal_oidc_session',
        interaction: 'portal_oidc_interaction',
        resume: 'portal_oidc_resume',
      },
      long: { httpOnly: true, sameSite: 'lax', secure: deps.secureCookies },
      short: { httpOnly: true, sameSite: 'lax', secure: deps.secureCookies },
    },
    // Organization scopes come with organization accounts; until then they are not offered.
    claims: Object.fromEntries(
      Object.entries(claimsByScope()).filter(([scope]) =>
        SCOPES.some((s) => s.scope === scope && s.subject === 'citizen'),
      ),
    ),
    scopes: ['openid', 'offline_access', ...dataScopes],
    subjectTypes: ['pairwise'],
    // Each partner sees a different, stable subject for the same citizen (CONTRACT.md).
    async pairwiseIdentifier(_ctx, accountId, client) {
      return pairwiseSubject(deps.pairwiseKey, String(client.sectorIdentifier), accountId);
    },
    async findAccount(_ctx, id) {
      const found = await deps.citizens.personalData(id);
      if (!found) return undefined;
      return {
        accountId: id,
        // oidc-provider releases only the claims of the granted scopes.
        claims: async () => ({ sub: id, ...accountClaims(found.personal, found.citizen) }),
      };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    clientAuthMethods: ['private_key_jwt', 'tls_client_auth'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: SIGNING_ALG,
      token_endpoint_auth_method: 'private_key_jwt',
    },
    enabledJWA: {
      clientAuthSigningAlgValues: FAPI_ALGS as never,
      idTokenSigningAlgValues: FAPI_ALGS as never,
      requestObjectSigningAlgValues: FAPI_ALGS as never,
      userinfoSigningAlgValues: FAPI_ALGS as never,
      introspectionSigningAlgValues: FAPI_ALGS as never,
      authorizationSigningAlgValues: FAPI_ALGS as never,
      dPoPSigningAlgValues: ['ES256', 'EdDSA'] as never,
    },
    pkce: { required: () => true },
    allowOmittingSingleRegisteredRedirectUri: false,
    responseTypes: ['code'],
    ttl: {
      AuthorizationCode: 60,
      AccessToken: 600,
      IdToken: 600,
      Interaction: 15 * 60,
      Session: 8 * 60 * 60,
      Grant: 366 * 24 * 60 * 60,
      RefreshToken: 90 * 24 * 60 * 60,
    },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Tokens are minted only while the consent allows it, and carry its id.
    async extraTokenClaims(_ctx, token) {
      const grantId = (token as { grantId?: string }).grantId;
      if (!grantId) return undefined;
      const consent = await deps.consents.activeForGrant(grantId);
      if (!consent)
        throw new errors.InvalidGrant('the consent behind this grant is no longer active');
      return { consent_id: consent.id };
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      fapi: { enabled: true, profile: '2.0' },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: true },
      dPoP: { enabled: true },
      introspection: {
        enabled: true,
        // A partner may introspect only its own tokens.
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: false,
        getCertificate: peerCertificate,
        // Node has already checked the chain against the partner CA (rejectUnauthorized).
        certificateAuthorized: (ctx) => peerSocket(ctx)?.authorized === true,
        certificateSubjectMatches: (ctx, property, expected) => {
          const cert = peerCertificate(ctx);
          if (!cert) return false;
          if (property === 'tls_client_auth_subject_dn') {
            return cert.subject
              .split('\n')
              .some((part) => part === expected || `CN=${part.slice(3)}` === expected);
          }
          if (property === 'tls_client_auth_san_dns') {
            return (cert.subjectAltName ?? '').split(', ').includes(`DNS:${expected}`);
          }
          return false;
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, indicator) => {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return resourceServer;
        },
      },
      richAuthorizationRequests: {
        enabled: true,
        types: {
          [CONSENT_DETAIL_TYPE]: {
            validate(ctx: KoaContextWithOIDC, detail: Record<string, unknown>) {
              const scopes = String(ctx.oidc.params?.scope ?? '').split(' ');
              try {
                parseConsentRequest([detail], scopes, isKnownScope);
              } catch (err) {
                throw new errors.InvalidAuthorizationDetails((err as Error).message);
              }
            },
          },
        },
        // Our policy: what the citizen approved — the grant's details, with the consent id —
        // is exactly what codes and tokens carry, and what the token response reports
        // (RFC 9396 §7), whatever the request asked for.
        authorizationDetailsForGrantSource: (ctx: KoaContextWithOIDC, source: { rar?: unknown }) =>
          (ctx.oidc.entities.Grant as { rar?: unknown } | undefined)?.rar ?? source.rar,
        authorizationDetailsForAccessToken: (
          ctx: KoaContextWithOIDC,
          _token: unknown,
          source: { rar?: unknown },
        ) => (ctx.oidc.entities.Grant as { rar?: unknown } | undefined)?.rar ?? source.rar,
        authorizationDetailsForIntrospection: (_ctx: unknown, token: { rar?: unknown }) =>
          token.rar,
      } as never,
    },
    discovery: {
      // RFC 8705 §5: partners reach these endpoints on the mTLS listener.
      mtls_endpoint_aliases: {
        token_endpoint: `${deps.mtlsUrl}/token`,
        pushed_authorization_request_endpoint: `${deps.mtlsUrl}/request`,
        introspection_endpoint: `${deps.mtlsUrl}/token/introspection`,
        revocation_endpoint: `${deps.mtlsUrl}/token/revocation`,
        userinfo_endpoint: `${deps.mtlsUrl}/me`,
      },
      service_documentation: `${deps.issuer}/docs/data-api`,
      ui_locales_supported: ['ru-RU'],
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = renderProviderError(out);
    },
  };

  const provider = new Provider(deps.issuer, configuration);
  // Koa takes `ctx.secure`, and so whether it may set Secure cookies, from
  // X-Forwarded-Proto only with `proxy` on. The app mounts the provider with
  // mountRawHandler's `forwardedProto`, which overwrites the X-Forwarded-* headers with
  // what the portal knows (its public scheme; the client address Fastify trusts), so
  // nothing a client sends is believed.
  provider.proxy = true;
  registerConsentGrant(provider, {
    consents: deps.consents,
    resource,
    resourceServer,
    peerCertificate,
  });
  return provider;
}

/** The `sub` one partner (by its sector) sees for a citizen: stable, and its own. */
export function pairwiseSubject(key: Buffer, sectorIdentifier: string, accountId: string) {
  return keyedHash(key, `${sectorIdentifier}|${accountId}`).slice(0, 40);
}

function peerSocket(ctx: KoaContextWithOIDC): TLSSocket | undefined {
  const socket = ctx.req.socket;
  return socket instanceof TLSSocket ? socket : undefined;
}

function peerCertificate(ctx: KoaContextWithOIDC): X509Certificate | undefined {
  const socket = peerSocket(ctx);
  if (!socket) return undefined;
  const peer = socket.getPeerCertificate();
  return peer?.raw ? new X509Certificate(peer.raw) : undefined;
}

const ERROR_TEXT: Record<string, string> = {
  invalid_request: 'Запрос на доступ составлен неверно.',
  invalid_client: 'Сервис, запросивший доступ, не зарегистрирован на портале.',
  invalid_redirect_uri: 'Адрес возврата не зарегистрирован для этого сервиса.',
  access_denied: 'Доступ не предоставлен.',
  invalid_request_uri:
    'Срок действия запроса на доступ истёк. Начните заново в приложении сервиса.',
  invalid_authorization_details: 'Сервис запросил доступ в недопустимом виде.',
};

/** Errors the browser sees when a redirect back to the partner is not possible. */
function renderProviderError(out: { error: string }): string {
  const text = ERROR_TEXT[out.error] ?? 'Не удалось обработать запрос на доступ.';
  return renderDocument(
    h(
      Layout,
      { title: 'Доступ не предоставлен', site: PORTAL_SITE_NAME, theme: 'portal' },
      h(Alert, { kind: 'error' }, text),
      h('p', { class: 'hint' }, `Код ошибки: ${out.error}`),
      h('p', null, h('a', { href: '/' }, 'На главную')),
    ),
  );
}
