import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import { parseSealed, type Sealer } from '../../platform/crypto/index.js';
import { AppError, NotFoundError } from '../../platform/http/errors.js';
import { callingPartner as partnerOf } from './calling-partner.js';
import { clientRefAad } from '../consents/connect.routes.js';
import {
  CONNECTION_FAILURES,
  type ConnectionFailure,
  type ConsentService,
} from '../consents/consent.service.js';
import type { PartnerService } from '../partners/partner.service.js';

/**
 * The partner's view of its own consents, on the mTLS listener:
 * - `GET /partner/consents/{id}` — status, scopes, dates, the citizen's subject as this
 *   partner knows it (pairwise), and for a connection the citizen started on the portal
 *   (J1) the identifier they typed, so the partner can find its customer;
 * - `POST /partner/consents/{id}/connection-result` — the partner could not complete a J1
 *   connection (no such customer, identity mismatch): the citizen sees «Не выполнено»;
 * - `POST /partner/applications/{ref}/closed` — the product application a consent serves
 *   was closed: its consents end («Истёк срок»).
 */
export function registerConsentApiRoutes(
  app: FastifyInstance,
  deps: {
    partners: PartnerService;
    consents: ConsentService;
    sealer: Sealer;
    audit: AuditLog;
    /** The pairwise subject (`sub`) this partner received for the citizen. */
    subjectFor: (clientId: string, citizenId: string) => Promise<string>;
    /** Removes the grant and every token of it (after the consent has ended). */
    removeGrant: (grantId: string) => Promise<void>;
  },
): void {
  const callingPartner = (request: FastifyRequest) => partnerOf(deps.partners, request);

  /** Only the partner's own consents exist for it: anything else is 404. */
  async function ownConsent(request: FastifyRequest) {
    const partner = await callingPartner(request);
    const { consentId } = request.params as { consentId: string };
    const consent = await deps.consents.get(consentId);
    if (!consent || consent.clientId !== partner.client_id)
      throw new NotFoundError('No such consent of this partner.');
    return { partner, consent };
  }

  const ConsentParams = Type.Object({ consentId: Type.String({ format: 'uuid' }) });

  app.get(
    '/partner/consents/:consentId',
    {
      schema: {
        summary: 'One consent of the calling partner (J1: with the client reference)',
        params: ConsentParams,
        response: {
          200: Type.Object({
            consent_id: Type.String(),
            status: Type.String(),
            origin: Type.Union([Type.Literal('partner'), Type.Literal('portal')]),
            subject: Type.String(),
            scopes: Type.Array(Type.String()),
            type: Type.String(),
            expires_at: Type.String(),
            granted_at: Type.Union([Type.String(), Type.Null()]),
            application_ref: Type.Union([Type.String(), Type.Null()]),
            client_ref: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      const { partner, consent } = await ownConsent(request);
      // The identifier is for matching the customer: only while the consent is open.
      const open = consent.status === 'pending' || consent.status === 'active';
      const clientRef =
        open && consent.clientRefSealed
          ? await deps.sealer.openText(
              parseSealed(consent.clientRefSealed),
              clientRefAad(consent.id),
            )
          : null;
      await deps.audit.append({
        actor: `partner:${partner.client_id}`,
        action: 'consent.read',
        subject: `consent:${consent.id}`,
      });
      return {
        consent_id: consent.id,
        status: consent.status,
        origin: consent.origin,
        subject: await deps.subjectFor(partner.client_id, consent.citizenId),
        scopes: consent.scopes,
        type: consent.type,
        expires_at: consent.expiresAt.toISOString(),
        granted_at: consent.grantedAt?.toISOString() ?? null,
        application_ref: consent.applicationRef,
        client_ref: clientRef,
      };
    },
  );

  app.post(
    '/partner/consents/:consentId/connection-result',
    {
      schema: {
        summary: 'Report that a portal-initiated connection could not be completed (J1)',
        params: ConsentParams,
        body: Type.Object({
          result: Type.Literal('rejected'),
          reason: Type.Union(
            Object.keys(CONNECTION_FAILURES)
              .filter((r) => r !== 'NO_RESPONSE')
              .map((r) => Type.Literal(r)),
          ),
        }),
        response: { 200: Type.Object({ status: Type.String() }) },
      },
    },
    async (request) => {
      const { partner, consent } = await ownConsent(request);
      if (consent.origin !== 'portal') {
        throw new AppError(
          'NOT_A_PORTAL_CONNECTION',
          409,
          'Only a connection the citizen started on the portal can be rejected this way; revoke the token instead.',
        );
      }
      const { reason } = request.body as { reason: ConnectionFailure };
      const failed = await deps.consents.failConnection(consent.id, reason, 'partner');
      if (failed?.grantId) await deps.removeGrant(failed.grantId);
      await deps.audit.append({
        actor: `partner:${partner.client_id}`,
        action: 'consent.connection_failed',
        subject: `consent:${consent.id}`,
        details: { reason },
      });
      return { status: failed ? 'rejected' : consent.status };
    },
  );

  app.post(
    '/partner/applications/:applicationRef/closed',
    {
      schema: {
        summary: 'The product application was closed: consents tied to it end',
        params: Type.Object({
          applicationRef: Type.String({ minLength: 1, maxLength: 64 }),
        }),
        response: { 200: Type.Object({ ended: Type.Array(Type.String()) }) },
      },
    },
    async (request) => {
      const partner = await callingPartner(request);
      const { applicationRef } = request.params as { applicationRef: string };
      const ended = await deps.consents.endForApplication(partner.client_id, applicationRef);
      for (const consent of ended) {
        if (consent.grantId) await deps.removeGrant(consent.grantId);
        await deps.audit.append({
          actor: `partner:${partner.client_id}`,
          action: 'consent.expired',
          subject: `consent:${consent.id}`,
          details: { reason: 'application_closed' },
        });
      }
      return { ended: ended.map((c) => c.id) };
    },
  );
}
