import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../../platform/clock.js';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { PortalClient } from './portal-client.js';
import type { PortalEventStore } from './portal-events.store.js';

/** A portal event as delivered (Standard Webhooks envelope). */
interface PortalEvent {
  type: string;
  timestamp: string;
  data: { consent_id?: string; origin?: 'partner' | 'portal' };
}

const SECRET_AAD = recordAad('portal_webhook', 'portal', 'secret');

/**
 * The bank's side of the portal's signed webhooks: it subscribes once over mTLS, then
 * verifies every delivery (signature and timestamp, Standard Webhooks), ignores a
 * delivery it has seen, and acts: when a consent ends, the data obtained under it goes.
 */
export function createPortalEvents(deps: {
  portal: PortalClient | undefined;
  store: PortalEventStore;
  sealer: Sealer;
  clock: Clock;
  logger: Logger;
  /** Where the portal should deliver, e.g. http://localhost:4000/webhooks/portal. */
  receiverUrl: string;
  /** The consent ended: cancel its operations, shred its vault row, tell the customer. */
  endConsent: (consentId: string, cause: 'revoked' | 'expired') => Promise<boolean>;
  /** The citizen paused (true) or resumed (false) the consent at the portal. */
  setPaused?: (consentId: string, paused: boolean) => Promise<unknown>;
  /** J1: a connection the citizen started on the portal; throws to have it retried. */
  connect?: (consentId: string) => Promise<unknown>;
}) {
  async function subscribe(): Promise<void> {
    const existing = await deps.store.subscription();
    if (existing || !deps.portal) return;
    const res = await deps.portal.post(`${deps.portal.material.mtlsBase}/partner/webhooks`, {
      url: deps.receiverUrl,
    });
    if (res.status !== 201)
      throw new Error(`the portal refused the webhook subscription (${res.status})`);
    const body = JSON.parse(res.body) as { id: string; secret: string };
    await deps.store.saveSubscription({
      endpoint_id: body.id,
      secret: serializeSealed(await deps.sealer.seal(body.secret, SECRET_AAD)),
      registered_at: deps.clock.now(),
    });
  }

  return {
    /** Subscribes in the background, retrying until the portal answers; returns a stop function. */
    start(retryMs = 15_000): () => void {
      let timer: NodeJS.Timeout | undefined;
      let stopped = false;
      const attempt = () => {
        subscribe().catch((err: unknown) => {
          deps.logger.warn(
            { err: (err as Error).message },
            'portal webhook subscription failed; will retry',
          );
          if (!stopped) timer = setTimeout(attempt, retryMs).unref();
        });
      };
      attempt();
      return () => {
        stopped = true;
        clearTimeout(timer);
      };
    },

    /** Handles one delivery; throws AppError for a forged, stale or unexpected one. */
    async receive(
      rawBody: string,
      headers: Record<string, string>,
    ): Promise<'handled' | 'duplicate' | 'ignored'> {
      const subscription = await deps.store.subscription();
      if (!subscription) {
        throw new AppError(
          'WEBHOOK_NOT_SUBSCRIBED',
          503,
          'The bank has no portal subscription yet.',
        );
      }
      const secret = await deps.sealer.openText(parseSealed(subscription.secret), SECRET_AAD);
      let event: PortalEvent;
      try {
        event = new Webhook(secret).verify(rawBody, headers) as PortalEvent;
      } catch {
        throw new AppError(
          'WEBHOOK_SIGNATURE_INVALID',
          401,
          'The webhook signature or timestamp is invalid.',
        );
      }
      const id = headers['webhook-id']!;
      if (await deps.store.hasReceipt(id)) return 'duplicate';
      let outcome: 'handled' | 'ignored' = 'ignored';
      const consentId = event.data.consent_id;
      if ((event.type === 'consent.revoked' || event.type === 'consent.expired') && consentId) {
        // Crypto-shredding: the row holds the only copy of the customer's data key. The
        // operations in flight under the consent are aborted first and write nothing back;
        // the signed deletion receipt goes back in the background.
        await deps.endConsent(consentId, event.type === 'consent.revoked' ? 'revoked' : 'expired');
        outcome = 'handled';
      } else if (
        (event.type === 'consent.paused' || event.type === 'consent.resumed') &&
        consentId
      ) {
        // The data stays (the consent has not ended); the pages say reads are paused.
        await deps.setPaused?.(consentId, event.type === 'consent.paused');
        outcome = 'handled';
      } else if (event.type === 'consent.granted' && event.data.origin === 'portal' && consentId) {
        // J1: the citizen connected the bank on the portal; find the customer, take the token.
        await deps.connect?.(consentId);
        outcome = 'handled';
      }
      // Recorded only after acting: if acting failed, the portal's retry is not mistaken for
      // a duplicate. Acting twice is harmless: each action above is idempotent.
      await deps.store.firstReceipt(id, event.type, deps.clock.now());
      return outcome;
    },
  };
}

export type PortalEvents = ReturnType<typeof createPortalEvents>;

/**
 * Tells the portal, signed with the bank's own key, that it deleted what it held under a
 * consent: the citizen sees it on the revocation timeline.
 */
export async function sendDeletionReceipt(
  deps: { portal: PortalClient | undefined; clock: Clock },
  consentId: string,
  deletedScopes: string[],
): Promise<void> {
  if (!deps.portal) return;
  const receipt = await deps.portal.sign(
    { consent_id: consentId, deleted: deletedScopes, deleted_at: deps.clock.now().toISOString() },
    'deletion-receipt+jwt',
  );
  const res = await deps.portal.post(
    `${deps.portal.material.mtlsBase}/partner/consents/${encodeURIComponent(consentId)}/deletion-receipt`,
    { receipt },
  );
  if (res.status !== 201 && res.status !== 200)
    throw new Error(`the portal refused the receipt (${res.status})`);
}
