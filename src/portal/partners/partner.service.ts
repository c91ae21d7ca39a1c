import { X509Certificate } from 'node:crypto';
import type { JWK } from 'jose';
import type { Clock } from '../../platform/clock.js';
import { BadRequestError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { CertificateAuthority } from '../../platform/pki/index.js';
import type { OidcStore } from '../oidc/oidc.store.js';
import { SIGNING_ALG } from '../oidc/signing-keys.js';
import { CONSENT_DETAIL_TYPE } from '../consents/consent.js';
import { parseConsentRequest } from '../consents/consent.service.js';
import { isKnownScope } from '../data-api/scope-catalog.js';
import { CONSENT_GRANT_TYPE } from '../oidc/consent-grant.js';
import type { PartnerStore, PortalConnectSettings } from './partner.store.js';

export interface PartnerRegistration {
  name: string;
  redirectUris: string[];
  /** The partner's public signing key for private_key_jwt (a JWK with kid). */
  signingJwk: JWK;
  /** A PKCS#10 request for the partner's client certificate. */
  csrPem: string;
  /**
   * How its access tokens are sender-constrained (FAPI 2.0 §5.3.2.2 allows either):
   * bound to its client certificate (RFC 8705, the default) or to a DPoP key (RFC 9449).
   */
  senderConstraint?: 'mtls' | 'dpop';
  /**
   * J1: the partner accepts connections citizens start on the portal, asking for this
   * consent; it then takes its token with the consent grant (certificate-bound only).
   */
  portalConnect?: PortalConnectSettings | undefined;
  /** Its own partner API rate limit (requests per window); default PARTNER_RATE_LIMIT. */
  rateLimit?: number | undefined;
}

export interface RegisteredPartner {
  clientId: string;
  certPem: string;
  thumbprint: string;
}

const CLIENT_CERT_DAYS = 365;
const ALLOWED_KEY_TYPES = new Set(['EC', 'RSA', 'OKP']);

/**
 * Registers a partner: its OAuth client (FAPI 2.0: private_key_jwt, certificate-bound
 * tokens, pairwise subjects, exact redirect URIs) and its client certificate from its CSR.
 */
export function createPartnerService(deps: {
  partners: PartnerStore;
  oidc: OidcStore;
  authority: CertificateAuthority;
  clock: Clock;
  ids: IdGenerator;
  /** Refuse non-https redirect URIs outside demo mode. */
  allowHttpRedirects: boolean;
}) {
  return {
    async register(input: PartnerRegistration): Promise<RegisteredPartner> {
      const name = input.name.trim();
      if (!name || name.length > 200) throw invalid('name must be 1–200 characters');
      if (input.redirectUris.length === 0 || input.redirectUris.length > 10) {
        throw invalid('give from 1 to 10 redirect URIs');
      }
      for (const uri of input.redirectUris) checkRedirectUri(uri, deps.allowHttpRedirects);
      const jwk = input.signingJwk;
      if (!jwk || typeof jwk !== 'object' || !ALLOWED_KEY_TYPES.has(String(jwk.kty)) || !jwk.kid) {
        throw invalid('signing_jwk must be a public JWK (EC, RSA or OKP) with a kid');
      }
      if ('d' in jwk || 'p' in jwk) throw invalid('signing_jwk must be the public key only');
      const rateLimit = checkRateLimit(input.rateLimit);
      const portalConnect = input.portalConnect
        ? checkPortalConnect(input.portalConnect, input.senderConstraint)
        : null;

      const clientId = `partner-${deps.ids.token(12)}`;
      const cert = await deps.authority.issueClientCertificate({
        csrPem: input.csrPem,
        validityDays: CLIENT_CERT_DAYS,
        subject: { commonName: clientId, organization: name.slice(0, 64) },
      });
      const now = deps.clock.now();
      await deps.oidc.upsert({
        model: 'Client',
        id: clientId,
        payload: {
          client_id: clientId,
          client_name: name,
          redirect_uris: input.redirectUris,
          grant_types: [
            'authorization_code',
            'refresh_token',
            ...(portalConnect ? [CONSENT_GRANT_TYPE] : []),
          ],
          response_types: ['code'],
          token_endpoint_auth_method: 'private_key_jwt',
          token_endpoint_auth_signing_alg: jwk.alg ?? 'ES256',
          id_token_signed_response_alg: SIGNING_ALG,
          tls_client_certificate_bound_access_tokens: input.senderConstraint !== 'dpop',
          dpop_bound_access_tokens: input.senderConstraint === 'dpop',
          subject_type: 'pairwise',
          jwks: { keys: [jwk] },
          authorization_details_types: ['soglasie_consent'],
        },
        grant_id: null,
        user_code: null,
        uid: null,
        expires_at: null,
        consumed_at: null,
      });
      await deps.partners.insert({
        client_id: clientId,
        name,
        cert_thumbprint: cert.thumbprint,
        cert_serial: cert.serialNumber,
        // The CA may cut the validity short (never past its own end): record the real one.
        cert_expires_at: new X509Certificate(cert.certPem).validToDate,
        status: 'active',
        created_at: now,
        portal_connect: portalConnect,
        rate_limit: rateLimit,
      });
      return { clientId, certPem: cert.certPem, thumbprint: cert.thumbprint };
    },

    byThumbprint: (thumbprint: string) => deps.partners.byThumbprint(thumbprint),
    listConnectable: () => deps.partners.listConnectable(),
    byClientId: (clientId: string) => deps.partners.byClientId(clientId),
    /** The partner's own rate limit (requests per window), or null for the default. */
    setRateLimit: (clientId: string, limit: number | null) =>
      deps.partners.setRateLimit(clientId, checkRateLimit(limit ?? undefined)),
  };
}

export type PartnerService = ReturnType<typeof createPartnerService>;

function checkRedirectUri(uri: string, allowHttp: boolean) {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(`redirect URI ${uri} is not a URL`);
  }
  if (url.hash) throw invalid('redirect URIs must not have a fragment');
  const loopback = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:' && loopback)) {
    throw invalid('redirect URIs must use https (http only for localhost in demo mode)');
  }
}

/** The J1 request must be one the consent screen can show and the catalog can serve. */
function checkPortalConnect(
  settings: PortalConnectSettings,
  senderConstraint: 'mtls' | 'dpop' | undefined,
): PortalConnectSettings {
  if (senderConstraint === 'dpop') {
    throw invalid('portal-initiated connections need certificate-bound tokens (mtls)');
  }
  const label =
    typeof settings.client_ref_label === 'string' ? settings.client_ref_label.trim() : '';
  if (!label || label.length > 60)
    throw invalid('portal_connect.client_ref_label must be 1–60 characters');
  const request = { ...settings.request, type: CONSENT_DETAIL_TYPE };
  const scopes = Array.isArray(request.scopes) ? request.scopes.map(String) : [];
  try {
    parseConsentRequest([request], ['openid', ...scopes], isKnownScope);
  } catch (err) {
    throw invalid(`portal_connect.request: ${(err as Error).message}`);
  }
  return { client_ref_label: label, request };
}

function checkRateLimit(limit: number | undefined): number | null {
  if (limit === undefined) return null;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1_000_000_000) {
    throw invalid('rate_limit must be a whole number from 1 to 1000000000');
  }
  return limit;
}

function invalid(message: string) {
  return new BadRequestError('INVALID_PARTNER', `Partner registration refused: ${message}.`);
}
