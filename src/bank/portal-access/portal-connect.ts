import type { Logger } from 'pino';
import * as client from 'openid-client';
import type { CustomerService } from '../customers/customer.service.js';
import type { PortalClient } from './portal-client.js';
import type { PortalLinkService } from './portal-link.service.js';

/** The portal's dedicated grant for consents citizens start there (J1). */
export const CONSENT_GRANT_TYPE = 'urn:soglasie:grant-type:consent';

/** How the bank names the identifier a citizen types on the portal (J1). */
export const CLIENT_NUMBER_LABEL = 'Номер клиента банка';

/** What the portal says about one of the bank's consents (`GET /partner/consents/{id}`). */
interface PortalConsent {
  consent_id: string;
  status: string;
  origin: 'partner' | 'portal';
  subject: string;
  scopes: string[];
  expires_at: string;
  client_ref: string | null;
}

export type ConnectOutcome =
  'linked' | 'customer-not-found' | 'identity-mismatch' | 'not-a-portal-connection';

/**
 * J1, the bank's side: the portal says `consent.granted` for a connection the citizen
 * started there. The bank reads the consent (with the client number the citizen typed),
 * finds its customer, takes the token with the consent grant (mTLS, certificate-bound),
 * fetches the data and checks it is the same person before keeping anything. When it
 * cannot match, it tells the portal why, and the citizen sees «Не выполнено».
 */
export function createPortalConnect(deps: {
  portal: PortalClient | undefined;
  customers: CustomerService;
  links: PortalLinkService;
  logger: Logger;
}) {
  async function reject(
    portal: PortalClient,
    consentId: string,
    reason: 'CUSTOMER_NOT_FOUND' | 'IDENTITY_MISMATCH',
  ) {
    const res = await portal.post(
      `${portal.material.mtlsBase}/partner/consents/${encodeURIComponent(consentId)}/connection-result`,
      { result: 'rejected', reason },
    );
    if (res.status !== 200) throw new Error(`the portal refused the result (${res.status})`);
  }

  return {
    /** Throws when the portal cannot be reached: the webhook is then retried. */
    async onGranted(consentId: string): Promise<ConnectOutcome> {
      const portal = deps.portal;
      if (!portal) return 'not-a-portal-connection';
      const res = await portal.get(
        `${portal.material.mtlsBase}/partner/consents/${encodeURIComponent(consentId)}`,
        { accept: 'application/json' },
      );
      if (res.status !== 200)
        throw new Error(`the portal did not show the consent (${res.status})`);
      const consent = JSON.parse(res.body) as PortalConsent;
      if (consent.origin !== 'portal' || !['pending', 'active'].includes(consent.status)) {
        return 'not-a-portal-connection';
      }
      const customerId = consent.client_ref
        ? await deps.customers.findIdByClientNumber(consent.client_ref)
        : undefined;
      const customer = customerId ? await deps.customers.get(customerId) : undefined;
      if (!customer) {
        await reject(portal, consentId, 'CUSTOMER_NOT_FOUND');
        deps.logger.info({ consent: consentId }, 'portal connection: no such client number');
        return 'customer-not-found';
      }
      // One link per customer: an earlier consent is ended at the portal, not orphaned there.
      const earlier = await deps.links.view(customer.id);
      if (earlier && earlier.consentId !== consentId) await deps.links.unlink(customer.id);
      const tokens = await client.genericGrantRequest(await portal.config(), CONSENT_GRANT_TYPE, {
        consent_id: consentId,
      });
      const adopted = await deps.links.adopt(customer.id, {
        consentId,
        sub: consent.subject,
        tokens,
        expiresAt: consent.expires_at,
        // Someone typed this client number: the data must be of the customer behind it.
        samePerson: (person) => samePerson(customer.personal, person),
      });
      if (adopted === 'mismatch') {
        await reject(portal, consentId, 'IDENTITY_MISMATCH');
        deps.logger.warn({ consent: consentId }, 'portal connection: identity mismatch');
        return 'identity-mismatch';
      }
      return 'linked';
    },
  };
}

export type PortalConnect = ReturnType<typeof createPortalConnect>;

const norm = (s: unknown) =>
  typeof s === 'string'
    ? s.normalize('NFKC').trim().toLocaleLowerCase('ru-RU').replace(/ё/g, 'е')
    : '';

/** `dd.mm.yyyy` (ESIA) or `yyyy-mm-dd` → `yyyy-mm-dd`. */
const isoDate = (s: unknown) => {
  const text = typeof s === 'string' ? s.trim() : '';
  const esia = /^(\d{2})\.(\d{2})\.(\d{4})$/.exec(text);
  return esia ? `${esia[3]}-${esia[2]}-${esia[1]}` : text;
};

/** Surname, first name and birth date must agree (the middle name is often missing). */
export function samePerson(
  bank: { lastName: string; firstName: string; birthDate: string },
  portal: Record<string, unknown> | undefined,
): boolean {
  if (!portal) return false;
  return (
    norm(bank.lastName) === norm(portal.lastName) &&
    norm(bank.firstName) === norm(portal.firstName) &&
    isoDate(bank.birthDate) === isoDate(portal.birthDate)
  );
}
