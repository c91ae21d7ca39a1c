import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../../platform/http/errors.js';
import { peerCertificateOf } from '../../platform/mtls/index.js';
import type { PartnerService } from '../partners/partner.service.js';

/**
 * The active partner whose client certificate is on this mTLS connection, or 403
 * PARTNER_UNKNOWN: how every partner-facing route that is not a token-bearing data read
 * knows who is calling.
 */
export async function callingPartner(
  partners: Pick<PartnerService, 'byThumbprint'>,
  request: FastifyRequest,
) {
  const cert = peerCertificateOf(request.raw.socket);
  const partner = cert ? await partners.byThumbprint(cert.thumbprint) : undefined;
  if (!partner || partner.status !== 'active') {
    throw new ForbiddenError(
      'This client certificate is not registered to an active partner.',
      'Сертификат не зарегистрирован.',
      'PARTNER_UNKNOWN',
    );
  }
  return partner;
}
