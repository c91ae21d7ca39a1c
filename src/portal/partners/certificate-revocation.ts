import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Clock } from '../../platform/clock.js';
import { AppError, NotFoundError } from '../../platform/http/errors.js';
import { peerCertificateOf } from '../../platform/mtls/index.js';
import type { RevocationStore } from './certificate-revocation.store.js';
import type { PartnerStore } from './partner.store.js';

/**
 * Revoking a partner's client certificate (`soglasie partner revoke-cert`), and refusing
 * a revoked certificate on the mTLS listener at once.
 *
 * The TLS handshake still succeeds for a revoked certificate (Node's listener checks the
 * chain, not our revocation list); the refusal is at the application layer, in one
 * onRequest hook on the partner app that runs before any route, the OAuth endpoints
 * mounted there included, on every request of every connection (so an open keep-alive
 * connection is refused at its next request, too).
 *
 * The revoked thumbprints are cached for REVOCATION_CACHE_MS; a revocation made through
 * this instance clears its cache, so it applies to the very next request here, and to
 * other instances within REVOCATION_CACHE_MS.
 */
export const REVOCATION_CACHE_MS = 2_000;

/** Paths of the OAuth endpoints on the mTLS listener: they answer OAuth errors. */
const OAUTH_CLIENT_ENDPOINTS = new Set([
  '/token',
  '/request',
  '/token/introspection',
  '/token/revocation',
]);
const OAUTH_RESOURCE_ENDPOINTS = new Set(['/me']);

export class CertificateRevokedError extends AppError {
  constructor() {
    super(
      'CERT_REVOKED',
      403,
      'The client certificate has been revoked.',
      'Сертификат партнёра отозван.',
    );
  }
}

export interface CertificateRevocation {
  clientId: string;
  thumbprint: string;
  serial: string;
  revokedAt: Date;
  /** It had been revoked before; nothing changed. */
  alreadyRevoked: boolean;
}

export function createCertificateRevocations(deps: {
  partners: Pick<PartnerStore, 'byClientId'>;
  store: RevocationStore;
  clock: Clock;
  /** The portal's audit log. */
  audit: (entry: {
    actor: string;
    action: string;
    subject?: string;
    details?: Record<string, unknown>;
  }) => Promise<void>;
  cacheMs?: number;
}) {
  const cacheMs = deps.cacheMs ?? REVOCATION_CACHE_MS;
  let cache: { loadedAt: number; byThumbprint: Map<string, string> } | undefined;
  let loading: Promise<Map<string, string>> | undefined;

  async function revoked(): Promise<Map<string, string>> {
    const now = deps.clock.now().getTime();
    if (cache && now - cache.loadedAt < cacheMs && now >= cache.loadedAt) {
      return cache.byThumbprint;
    }
    return (loading ??= deps.store
      .all()
      .then((rows) => {
        const byThumbprint = new Map(rows.map((r) => [r.thumbprint, r.client_id]));
        cache = { loadedAt: now, byThumbprint };
        return byThumbprint;
      })
      .finally(() => {
        loading = undefined;
      }));
  }

  return {
    /** Revokes the partner's current client certificate; audited. */
    async revoke(input: {
      clientId: string;
      reason?: string | undefined;
      actor: string;
    }): Promise<CertificateRevocation> {
      const partner = await deps.partners.byClientId(input.clientId);
      if (!partner) throw new NotFoundError(`No partner ${input.clientId}.`);
      const revokedAt = deps.clock.now();
      const reason = input.reason?.trim().slice(0, 500) || null;
      const inserted = await deps.store.insert({
        thumbprint: partner.cert_thumbprint,
        client_id: partner.client_id,
        serial: partner.cert_serial,
        reason,
        revoked_at: revokedAt,
      });
      cache = undefined;
      if (!inserted) {
        const first = await deps.store.byThumbprint(partner.cert_thumbprint);
        return {
          clientId: partner.client_id,
          thumbprint: partner.cert_thumbprint,
          serial: partner.cert_serial,
          revokedAt: first ? new Date(first.revoked_at) : revokedAt,
          alreadyRevoked: true,
        };
      }
      // The reason is the operator's free text: it stays in the revocation record, out
      // of the (immutable) audit log.
      await deps.audit({
        actor: input.actor,
        action: 'partner.certificate_revoked',
        subject: partner.client_id,
        details: { thumbprint: partner.cert_thumbprint, serial: partner.cert_serial },
      });
      return {
        clientId: partner.client_id,
        thumbprint: partner.cert_thumbprint,
        serial: partner.cert_serial,
        revokedAt,
        alreadyRevoked: false,
      };
    },

    /** The partner whose revoked certificate this is, or undefined when not revoked. */
    async revokedClient(thumbprint: string): Promise<string | undefined> {
      return (await revoked()).get(thumbprint);
    },
  };
}

export type CertificateRevocations = ReturnType<typeof createCertificateRevocations>;

/**
 * The onRequest hook for the partner app: a request over a connection whose client
 * certificate is revoked gets 403 CERT_REVOKED (problem+json), or an OAuth error on the
 * OAuth endpoints. Requests without a verified certificate pass: the listener itself
 * refuses those in the TLS handshake (and inject() in tests has none).
 */
export function refuseRevokedCertificates(revocations: CertificateRevocations, logger: Logger) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const peer = peerCertificateOf(request.raw.socket);
    if (!peer) return undefined;
    const clientId = await revocations.revokedClient(peer.thumbprint);
    if (clientId === undefined) return undefined;
    logger.warn(
      { client: clientId, thumbprint: peer.thumbprint, url: request.url },
      'request with a revoked client certificate refused',
    );
    const path = request.url.split('?')[0]!.replace(/\/+$/, '') || '/';
    const description = 'The client certificate has been revoked.';
    if (OAUTH_CLIENT_ENDPOINTS.has(path)) {
      // RFC 6749 §5.2: client authentication failed.
      return reply
        .status(401)
        .header('cache-control', 'no-store')
        .send({ error: 'invalid_client', error_description: description });
    }
    if (OAUTH_RESOURCE_ENDPOINTS.has(path)) {
      // RFC 6750 §3.1.
      return reply
        .status(401)
        .header(
          'www-authenticate',
          `Bearer error="invalid_token", error_description="${description}"`,
        )
        .send({ error: 'invalid_token', error_description: description });
    }
    throw new CertificateRevokedError();
  };
}
