import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import type { Clock } from '../../platform/clock.js';
import {
  AppError,
  BadRequestError,
  ForbiddenError,
  NotFoundError,
} from '../../platform/http/errors.js';
import type { Webhooks } from '../../platform/webhooks/index.js';
import { peerCertificateOf } from '../../platform/mtls/index.js';
import type { CitizenService } from '../citizens/citizen.service.js';
import type { ConsentService } from '../consents/consent.service.js';
import type { CitizenRecordService } from '../data-api/citizen-records.service.js';
import {
  fieldsReturned,
  requiredScopeFor,
  resourceJson,
  ScopeNotGrantedError,
} from '../data-api/resources.js';
import type { DataResource } from '../data-api/scope-catalog.js';
import { toXml } from '../data-api/xml.js';
import type { PartnerService } from '../partners/partner.service.js';
import {
  checkCertificateBinding,
  checkConsentActive,
  checkPartner,
  checkSubject,
  grantedScopes,
  readAccessToken,
  type AccessTokenClaims,
} from './access-checks.js';
import type { createDpopChecker } from './dpop.js';
import type { AnomalyService } from '../security/anomaly.service.js';

export interface PartnerApiDeps {
  clock: Clock;
  /** The listener's public base URL, for DPoP `htu`. */
  publicUrl: string;
  checkDpop: ReturnType<typeof createDpopChecker>;
  verifyAccessToken: (token: string) => Promise<AccessTokenClaims>;
  partners: PartnerService;
  consents: ConsentService;
  citizens: CitizenService;
  records: CitizenRecordService;
  audit: AuditLog;
  webhooks: Webhooks;
  /** Anomaly rules: request frequency after the checks, parameter mismatches on refusal. */
  anomaly?: Pick<AnomalyService, 'checkRead' | 'onRefused'> | undefined;
  /** Verifies a JWS the partner signed with its registered key; throws RECEIPT_INVALID. */
  verifyPartnerStatement: (
    clientId: string,
    jws: string,
    typ: string,
  ) => Promise<Record<string, unknown>>;
}

/** CONTRACT.md paths → our resource names (ESIA: /rs/prns/{oid}/docs, /addrs, /ctts). */
const PATHS: Record<string, DataResource> = {
  docs: 'docs',
  addrs: 'addrs',
  ctts: 'ctts',
  orders: 'orders',
  payments: 'payments',
};

const OidParams = Type.Object({ oid: Type.String({ minLength: 1, maxLength: 128 }) });

export function registerPartnerApiRoutes(app: FastifyInstance, deps: PartnerApiDeps): void {
  const peer = (request: FastifyRequest) => peerCertificateOf(request.raw.socket);

  app.get(
    '/status',
    {
      schema: {
        summary: 'Health and the identity of the calling partner',
        response: {
          200: Type.Object({
            status: Type.Literal('ok'),
            partner: Type.Object({ client_id: Type.String(), name: Type.String() }),
            certificate: Type.Object({ thumbprint: Type.String(), expires_at: Type.String() }),
            time: Type.String(),
          }),
        },
      },
    },
    async (request) => {
      const cert = peer(request);
      const partner = cert ? await deps.partners.byThumbprint(cert.thumbprint) : undefined;
      if (!partner) {
        throw new ForbiddenError(
          'This client certificate is not registered to any partner.',
          'Сертификат не зарегистрирован.',
          'PARTNER_UNKNOWN',
        );
      }
      return {
        status: 'ok' as const,
        partner: { client_id: partner.client_id, name: partner.name },
        certificate: {
          thumbprint: partner.cert_thumbprint,
          expires_at: new Date(partner.cert_expires_at).toISOString(),
        },
        time: deps.clock.now().toISOString(),
      };
    },
  );

  // CONTRACT.md: a partner subscribes to its events; the secret is shown once.
  app.post(
    '/partner/webhooks',
    {
      schema: {
        summary: 'Register a webhook endpoint for the calling partner (Standard Webhooks)',
        body: Type.Object({ url: Type.String({ minLength: 1, maxLength: 2000 }) }),
        response: { 201: Type.Object({ id: Type.String(), secret: Type.String() }) },
      },
    },
    async (request, reply) => {
      const cert = peer(request);
      const partner = cert ? await deps.partners.byThumbprint(cert.thumbprint) : undefined;
      if (!partner || partner.status !== 'active') {
        throw new ForbiddenError(
          'This client certificate is not registered to an active partner.',
          'Сертификат не зарегистрирован.',
          'PARTNER_UNKNOWN',
        );
      }
      // A refused URL is a WebhookError (an AppError): problem+json 400 with its code.
      const endpoint = await deps.webhooks.registerEndpoint(
        partner.client_id,
        (request.body as { url: string }).url,
      );
      return reply.status(201).send(endpoint);
    },
  );

  // The partner proves it deleted the data of an ended consent: a JWS signed with the key
  // it registered (the one behind private_key_jwt), kept for the citizen's timeline.
  app.post(
    '/partner/consents/:consentId/deletion-receipt',
    {
      schema: {
        summary: 'Submit a signed deletion receipt for an ended consent',
        params: Type.Object({ consentId: Type.String({ format: 'uuid' }) }),
        body: Type.Object({ receipt: Type.String({ minLength: 1, maxLength: 8192 }) }),
      },
    },
    async (request, reply) => {
      const cert = peer(request);
      const partner = cert ? await deps.partners.byThumbprint(cert.thumbprint) : undefined;
      if (!partner) {
        throw new ForbiddenError(
          'Unknown client certificate.',
          'Сертификат не зарегистрирован.',
          'PARTNER_UNKNOWN',
        );
      }
      const { consentId } = request.params as { consentId: string };
      const consent = await deps.consents.get(consentId);
      if (!consent || consent.clientId !== partner.client_id)
        throw new NotFoundError('No such consent of this partner.');
      if (consent.status !== 'revoked' && consent.status !== 'expired') {
        throw new AppError(
          'CONSENT_STILL_ACTIVE',
          409,
          'The consent has not ended; there is nothing to have deleted.',
        );
      }
      const claims = await deps.verifyPartnerStatement(
        partner.client_id,
        (request.body as { receipt: string }).receipt,
        'deletion-receipt+jwt',
      );
      if (
        claims.consent_id !== consentId ||
        !Array.isArray(claims.deleted) ||
        typeof claims.deleted_at !== 'string'
      ) {
        throw new BadRequestError('RECEIPT_INVALID', 'The receipt does not describe this consent.');
      }
      const outcome = await deps.consents.recordDeletion(consent, {
        jws: (request.body as { receipt: string }).receipt,
        deleted: claims.deleted as string[],
        deletedAt: claims.deleted_at,
      });
      await deps.audit.append({
        actor: `partner:${partner.client_id}`,
        action: 'consent.deletion_confirmed',
        subject: `consent:${consentId}`,
      });
      return reply.status(outcome === 'recorded' ? 201 : 200).send({ status: outcome });
    },
  );

  /**
   * A refusal by a check is shown to the anomaly rules (token over another certificate,
   * data beyond the consent, another person) before the partner gets it.
   */
  async function read(request: FastifyRequest, resource: DataResource) {
    const seen: { claims?: AccessTokenClaims } = {};
    try {
      return await pipeline(request, resource, seen);
    } catch (err) {
      await deps.anomaly?.onRefused(err, {
        claims: seen.claims,
        ip: request.ip,
        peerThumbprint: peer(request)?.thumbprint,
      });
      throw err;
    }
  }

  /** The pipeline every data read goes through, then the read itself and its audit entry. */
  async function pipeline(
    request: FastifyRequest,
    resource: DataResource,
    seen: { claims?: AccessTokenClaims },
  ) {
    const { oid } = request.params as { oid: string };
    const presented = readAccessToken(request.headers.authorization);
    const claims = await deps.verifyAccessToken(presented.token);
    seen.claims = claims;
    const cert = peer(request);
    checkCertificateBinding(claims, cert?.thumbprint);
    const proof = request.headers.dpop;
    await deps.checkDpop({
      ...presented,
      claims,
      proof: typeof proof === 'string' ? proof : undefined,
      method: request.method,
      url: `${deps.publicUrl}${request.url.split('?')[0]}`,
    });
    checkPartner(cert ? await deps.partners.byThumbprint(cert.thumbprint) : undefined, claims);
    const consent = await deps.consents.getForRead(claims.consent_id);
    const checkedAt = deps.clock.now();
    checkConsentActive(consent, claims, checkedAt);
    checkSubject(claims, oid);
    const scopes = grantedScopes(claims, consent!);
    const required = requiredScopeFor(resource);
    if (!scopes.has(required)) throw new ScopeNotGrantedError(resource, required);
    // Request frequency per consent (security/anomaly-rules.ts); a hit pauses the consent.
    await deps.anomaly?.checkRead({ consent: consent!, ip: request.ip });

    const found = await deps.citizens.personalData(consent!.citizenId);
    if (!found)
      throw new ForbiddenError(
        'The citizen no longer exists.',
        'Данные недоступны.',
        'SUBJECT_GONE',
      );
    const needsRecords = resource === 'orders' || resource === 'payments';
    const json = resourceJson(resource, {
      oid,
      personal: found.personal,
      orders: needsRecords ? await deps.records.listOrders(consent!.citizenId) : [],
      payments: needsRecords ? await deps.records.listPayments(consent!.citizenId) : [],
      grantedScopes: scopes,
      confirmed: { phone: found.citizen.phoneConfirmed, email: found.citizen.emailConfirmed },
    });
    // The read is on record before the data leaves; no values, only which fields.
    await deps.audit.append({
      actor: `partner:${claims.client_id}`,
      action: 'data.read',
      subject: `consent:${consent!.id}`,
      details: { resource, fields: fieldsReturned(resource, scopes), token: claims.jti },
      at: checkedAt,
    });
    return json;
  }

  const send = async (
    request: FastifyRequest,
    reply: import('fastify').FastifyReply,
    resource: DataResource,
  ) => {
    const json = await read(request, resource);
    if ((request.headers.accept ?? '').includes('application/xml')) {
      return reply.type('application/xml; charset=utf-8').send(toXml(resource, json as never));
    }
    return reply.type('application/json; charset=utf-8').send(json);
  };

  app.get(
    '/rs/prns/:oid',
    { schema: { summary: 'The citizen, fields filtered by the consent', params: OidParams } },
    async (request, reply) => send(request, reply, 'person'),
  );

  app.get(
    '/rs/prns/:oid/:collection',
    {
      schema: {
        summary: 'Documents, addresses, contacts, state service applications or payments',
        params: Type.Object({
          oid: Type.String({ minLength: 1, maxLength: 128 }),
          collection: Type.Union(Object.keys(PATHS).map((k) => Type.Literal(k))),
        }),
      },
    },
    async (request, reply) =>
      send(request, reply, PATHS[(request.params as { collection: string }).collection]!),
  );
}
