import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { timingSafeEqualString } from '../../platform/crypto/index.js';
import { ForbiddenError, UnauthorizedError } from '../../platform/http/errors.js';
import type { CertificateRevocations } from './certificate-revocation.js';
import type { PartnerService } from './partner.service.js';
import type { PortalConnectSettings } from './partner.store.js';

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * The admin API for commands that change a running portal (`soglasie partner add`): on
 * loopback only, authenticated by the token in the data directory (mode 0600), because
 * the embedded database belongs to the running process.
 */
export function registerAdminApi(
  app: FastifyInstance,
  deps: {
    token: string;
    partners: PartnerService;
    caPem: string;
    issuer: string;
    mtlsUrl: string;
    /** `soglasie partner revoke-cert`. */
    revocations?: CertificateRevocations;
  },
): void {
  app.addHook('onRequest', async (request) => {
    if (!request.url.startsWith('/admin-api/')) return;
    // The socket address, not X-Forwarded-For: a proxy must not open this door.
    if (!LOOPBACK.has(request.raw.socket.remoteAddress ?? '')) {
      throw new ForbiddenError('The admin API answers on loopback only.');
    }
    const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (!given || !timingSafeEqualString(given, deps.token)) {
      throw new UnauthorizedError('The admin token is missing or wrong.');
    }
  });

  app.post(
    '/admin-api/partners',
    {
      config: { csrf: false },
      schema: {
        summary: 'Register a partner client (used by `soglasie partner add`)',
        body: Type.Object({
          name: Type.String({ minLength: 1, maxLength: 200 }),
          redirect_uris: Type.Array(Type.String({ maxLength: 2000 }), {
            minItems: 1,
            maxItems: 10,
          }),
          signing_jwk: Type.Record(Type.String(), Type.Unknown()),
          csr: Type.String({ maxLength: 16_384 }),
          sender_constraint: Type.Optional(
            Type.Union([Type.Literal('mtls'), Type.Literal('dpop')]),
          ),
          // J1: accept connections citizens start on the portal, asking for this consent.
          portal_connect: Type.Optional(
            Type.Object({
              client_ref_label: Type.String({ minLength: 1, maxLength: 60 }),
              request: Type.Record(Type.String(), Type.Unknown()),
            }),
          ),
          // Its own partner API rate limit (requests per window); default PARTNER_RATE_LIMIT.
          rate_limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000 })),
        }),
      },
    },
    async (request, reply) => {
      const body = request.body as {
        name: string;
        redirect_uris: string[];
        signing_jwk: Record<string, unknown>;
        csr: string;
        sender_constraint?: 'mtls' | 'dpop';
        portal_connect?: PortalConnectSettings;
        rate_limit?: number;
      };
      const partner = await deps.partners.register({
        name: body.name,
        redirectUris: body.redirect_uris,
        signingJwk: body.signing_jwk,
        csrPem: body.csr,
        senderConstraint: body.sender_constraint,
        portalConnect: body.portal_connect,
        rateLimit: body.rate_limit,
      });
      return reply.status(201).send({
        client_id: partner.clientId,
        issuer: deps.issuer,
        redirect_uris: body.redirect_uris,
        mtls_endpoints: {
          token_endpoint: `${deps.mtlsUrl}/token`,
          pushed_authorization_request_endpoint: `${deps.mtlsUrl}/request`,
          introspection_endpoint: `${deps.mtlsUrl}/token/introspection`,
          revocation_endpoint: `${deps.mtlsUrl}/token/revocation`,
          data_api: `${deps.mtlsUrl}/rs`,
          status: `${deps.mtlsUrl}/status`,
        },
        client_certificate: partner.certPem,
        ca_certificate: deps.caPem,
        certificate_thumbprint: partner.thumbprint,
        portal_connect: body.portal_connect !== undefined,
      });
    },
  );

  const revocations = deps.revocations;
  if (revocations) {
    app.post(
      '/admin-api/partners/:clientId/revoke-certificate',
      {
        config: { csrf: false },
        schema: {
          summary: "Revoke a partner's client certificate (used by `soglasie partner revoke-cert`)",
          params: Type.Object({ clientId: Type.String({ minLength: 1, maxLength: 100 }) }),
          body: Type.Object({ reason: Type.Optional(Type.String({ maxLength: 500 })) }),
        },
      },
      async (request) => {
        const { clientId } = request.params as { clientId: string };
        const body = request.body as { reason?: string };
        const revoked = await revocations.revoke({
          clientId,
          reason: body.reason,
          actor: 'admin-api',
        });
        return {
          client_id: revoked.clientId,
          certificate_thumbprint: revoked.thumbprint,
          certificate_serial: revoked.serial,
          revoked_at: revoked.revokedAt.toISOString(),
          already_revoked: revoked.alreadyRevoked,
        };
      },
    );
  }
}
