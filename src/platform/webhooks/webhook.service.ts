import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../clock.js';
import { parseSealed, recordAad, serializeSealed, type Sealer } from '../crypto/index.js';
import type { IdGenerator } from '../ids.js';
import { WebhookError } from './errors.js';
import { checkEndpointUrl } from './url-policy.js';
import {
  createWebhookStore,
  type ClaimedMessage,
  type JsonValue,
  type WebhookMessageRecord,
  type WebhookMessageStatus,
  type WebhookTables,
} from './webhook.store.js';

/**
 * Outbound webhooks per the Standard Webhooks spec (https://www.standardwebhooks.com/):
 * each message is a JSON envelope `{ type, timestamp, data }` POSTed with the headers
 * `webhook-id` (the message id, for the receiver to deduplicate on), `webhook-timestamp`
 * (Unix seconds of the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
 * `id.timestamp.body` under the endpoint's `whsec_` secret), signed by the
 * `standardwebhooks` library, so any Standard Webhooks verifier accepts them.
 *
 * Delivery is at least once, through a transactional outbox: enqueue() writes the messages
 * in the caller's transaction, so an event is announced if and only if its change commits.
 * Workers (deliverDue / startWorker; any number, on any instance) claim due messages with
 * FOR UPDATE SKIP LOCKED and a lease, then send them outside any transaction. Failures are
 * retried on RETRY_SCHEDULE_MS; 410 Gone disables the endpoint.
 */

/** Waits after the 1st, 2nd, … failed attempt; after the last, the message is dead. */
export const RETRY_SCHEDULE_MS: readonly number[] = Object.freeze([
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
  14 * 3_600_000,
  20 * 3_600_000,
  24 * 3_600_000,
]);
/** How long a claimed message stays invisible to other workers while one delivers it. */
export const CLAIM_LEASE_MS = 60_000;
/** Per request, connection to end of headers. Must stay well under CLAIM_LEASE_MS. */
export const DELIVERY_TIMEOUT_MS = 5_000;
/** Random bytes in a new endpoint secret (Standard Webhooks asks for 24 to 64). */
export const SECRET_BYTES = 32;
export const DEFAULT_BATCH = 20;
/** A batch is sent in parallel, so it is bounded. */
export const MAX_BATCH = 100;
/** Longest last_error kept. */
const MAX_ERROR_LENGTH = 300;
const EVENT_TYPE = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/;
const USER_AGENT = 'soglasie-webhooks/1';

export interface WebhookDeps {
  db: Kysely<WebhookTables>;
  sealer: Sealer;
  clock: Clock;
  ids: IdGenerator;
  /** Demo and tests only: http:// and loopback/private addresses become acceptable. */
  allowPrivateUrls: boolean;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Defaults to DELIVERY_TIMEOUT_MS; tests shorten it. */
  timeoutMs?: number;
}

export interface DeliveryCounts {
  /** Messages this pass claimed. */
  claimed: number;
  delivered: number;
  /** Failed and scheduled for another attempt. */
  retrying: number;
  /** Died this pass: out of attempts, endpoint gone (410) or disabled. */
  dead: number;
  /** Outcomes not recorded because the claim had lapsed and another worker took over. */
  lost: number;
}

export type WebhookWorkerLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface WebhookMessageFilter {
  status?: WebhookMessageStatus;
  /** Only messages of this event type, e.g. consent.revoked. */
  eventType?: string;
  /** Newest first; default 100, at most 1000. */
  limit?: number;
}

export type { WebhookMessageRecord };

type Attempt =
  | { kind: 'delivered'; status: number }
  | { kind: 'gone'; status: 410 }
  | { kind: 'failed'; status: number | null; error: string };

const secretAad = (endpointId: string) => recordAad('webhook_endpoints', endpointId, 'secret');

export function createWebhooks(deps: WebhookDeps) {
  const { db, sealer, clock, ids, allowPrivateUrls } = deps;
  const doFetch = deps.fetch ?? globalThis.fetch;
  const timeoutMs = deps.timeoutMs ?? DELIVERY_TIMEOUT_MS;
  if (!(timeoutMs > 0 && timeoutMs <= CLAIM_LEASE_MS / 4))
    throw new TypeError('webhook timeoutMs must be positive and well under the claim lease');
  const store = createWebhookStore(db);
  const compactId = () => ids.uuid().replaceAll('-', '');

  /** whsec_ + standard base64 (what Webhook expects), from the injected randomness. */
  function newSecret(): string {
    const bytes = Buffer.from(ids.token(SECRET_BYTES), 'base64url');
    if (bytes.length < 24) throw new Error('the id generator returned too few random bytes');
    return `whsec_${bytes.toString('base64')}`;
  }

  async function attempt(message: ClaimedMessage, secret: string): Promise<Attempt> {
    const body = JSON.stringify({
      type: message.eventType,
      timestamp: message.createdAt.toISOString(),
      data: message.payload,
    });
    const sentAt = clock.now();
    const headers = {
      'content-type': 'application/json',
      'user-agent': USER_AGENT,
      'webhook-id': message.id,
      'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
      'webhook-signature': new Webhook(secret).sign(message.id, sentAt, body),
    };
    let response: Response;
    try {
      response = await doFetch(message.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      return { kind: 'failed', status: null, error: describeNetworkError(err, timeoutMs) };
    }
    // The body is of no interest; drop it so the connection is freed.
    await response.body?.cancel().catch(() => undefined);
    const { status } = response;
    if (status >= 200 && status < 300) return { kind: 'delivered', status };
    if (status === 410) return { kind: 'gone', status };
    const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
    return { kind: 'failed', status, error: `HTTP ${status}${redirect}` };
  }

  async function deliverOne(message: ClaimedMessage, counts: DeliveryCounts): Promise<void> {
    const attempts = message.attempts + 1;
    const lease = message.leaseUntil;
    if (message.endpointDisabled) {
      const ok = await store.recordDead(message.id, lease, {
        attempts: message.attempts,
        lastStatus: null,
        lastError: 'endpoint disabled',
      });
      if (ok) counts.dead += 1;
      else counts.lost += 1;
      return;
    }
    let result: Attempt;
    try {
      const secret = await sealer.openText(
        parseSealed(message.sealedSecret),
        secretAad(message.endpointId),
      );
      result = await attempt(message, secret);
    } catch (err) {
      // E.g. the keyring lacks the KEK version: counted as a failed attempt, not retried
      // every lease forever.
      const code = (err as { code?: unknown }).code;
      result = {
        kind: 'failed',
        status: null,
        error: `cannot sign: the endpoint secret did not open (${typeof code === 'string' ? code : 'error'})`,
      };
    }
    const now = clock.now();
    let recorded: boolean;
    if (result.kind === 'delivered') {
      recorded = await store.recordDelivered(
        message.id,
        lease,
        { attempts, lastStatus: result.status, lastError: null },
        now,
      );
      if (recorded) counts.delivered += 1;
    } else if (result.kind === 'gone') {
      const reason = 'HTTP 410 Gone: the endpoint was disabled';
      recorded = await store.recordDead(message.id, lease, {
        attempts,
        lastStatus: 410,
        lastError: reason,
      });
      if (recorded) counts.dead += 1;
      counts.dead += await store.disableEndpoint(message.endpointId, now, reason);
    } else {
      const outcome = { attempts, lastStatus: result.status, lastError: result.error };
      const wait = RETRY_SCHEDULE_MS[attempts - 1];
      if (wait === undefined) {
        recorded = await store.recordDead(message.id, lease, outcome);
        if (recorded) counts.dead += 1;
      } else {
        recorded = await store.recordRetry(
          message.id,
          lease,
          outcome,
          new Date(now.getTime() + wait),
        );
        if (recorded) counts.retrying += 1;
      }
    }
    if (!recorded) counts.lost += 1;
  }

  /** One worker pass: claims up to `limit` due messages and attempts each once. */
  async function deliverDue(limit: number = DEFAULT_BATCH): Promise<DeliveryCounts> {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH)
      throw new TypeError(`deliverDue limit must be an integer from 1 to ${MAX_BATCH}`);
    const now = clock.now();
    const claimed = await store.claimDue(now, new Date(now.getTime() + CLAIM_LEASE_MS), limit);
    const counts: DeliveryCounts = {
      claimed: claimed.length,
      delivered: 0,
      retrying: 0,
      dead: 0,
      lost: 0,
    };
    // In parallel: the whole batch must finish well within the lease.
    const results = await Promise.allSettled(claimed.map((m) => deliverOne(m, counts)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // A message whose outcome could not be recorded is retried when its lease lapses.
    if (failed) throw failed.reason;
    return counts;
  }

  return {
    /**
     * Registers where `owner`'s events go. Returns the signing secret, once: only its
     * sealed form is stored. Throws WebhookError ERR_WEBHOOK_URL for an unacceptable URL.
     */
    async registerEndpoint(owner: string, url: string): Promise<{ id: string; secret: string }> {
      if (typeof owner !== 'string' || owner === '')
        throw new TypeError('registerEndpoint needs an owner');
      const checked = checkEndpointUrl(url, { allowPrivateUrls });
      const id = `ep_${compactId()}`;
      const secret = newSecret();
      const sealed = await sealer.seal(secret, secretAad(id));
      await store.insertEndpoint({
        id,
        owner,
        url: checked.href,
        secret: serializeSealed(sealed),
        created_at: clock.now(),
        disabled_at: null,
      });
      return { id, secret };
    },

    /**
     * Queues one message per active endpoint of `owner`, in `trx`: the caller's transaction
     * that makes the change the event announces, so both commit or neither does. Returns
     * the message ids (the webhook-id each receiver sees); none when the owner has no
     * active endpoint.
     */
    async enqueue<DB extends WebhookTables>(
      trx: Transaction<DB> | Kysely<WebhookTables>,
      owner: string,
      eventType: string,
      payload: JsonValue,
    ): Promise<string[]> {
      // Either type lets a plain Kysely through (callers cast to Kysely<WebhookTables>, as
      // elsewhere in this codebase), so it is checked here.
      if (!trx.isTransaction)
        throw new TypeError(
          'enqueue needs the transaction that makes the change it announces (inTransaction)',
        );
      if (!EVENT_TYPE.test(eventType))
        throw new TypeError(`webhook event type ${JSON.stringify(eventType)} is not acceptable`);
      const payloadJson = JSON.stringify(payload) as string | undefined;
      if (payloadJson === undefined) throw new TypeError('webhook payload must be a JSON value');
      const inTrx = createWebhookStore(trx as unknown as Kysely<WebhookTables>);
      const endpointIds = await inTrx.activeEndpointIds(owner);
      const at = clock.now();
      const rows = endpointIds.map((endpointId) => ({
        id: `msg_${compactId()}`,
        endpointId,
        eventType,
        payloadJson,
        at,
      }));
      await inTrx.insertMessages(rows);
      return rows.map((r) => r.id);
    },

    deliverDue,

    /**
     * Runs deliverDue every `intervalMs` (at once again while batches come back full),
     * never two passes at a time in this worker. Other workers, here or on other
     * instances, may run alongside. Returns stop(), which resolves when the pass in
     * progress, if any, has finished.
     */
    startWorker(opts: {
      intervalMs?: number;
      logger: WebhookWorkerLogger;
      batch?: number;
    }): () => Promise<void> {
      const intervalMs = opts.intervalMs ?? 500;
      const batch = opts.batch ?? DEFAULT_BATCH;
      const { logger } = opts;
      let stopped = false;
      let timer: NodeJS.Timeout | undefined;
      let running: Promise<void> | undefined;

      const schedule = (delay: number) => {
        if (stopped) return;
        timer = setTimeout(pass, delay);
        timer.unref();
      };
      function pass() {
        timer = undefined;
        running = deliverDue(batch)
          .then(
            (counts) => {
              if (counts.claimed > 0) logger.debug({ webhooks: counts }, 'webhook delivery pass');
              if (counts.dead > 0) logger.info({ webhooks: counts }, 'webhook messages died');
              return counts.claimed === batch ? 0 : intervalMs;
            },
            (err: unknown) => {
              logger.warn({ err }, 'webhook delivery pass failed');
              return intervalMs;
            },
          )
          .then((delay) => {
            running = undefined;
            schedule(delay);
          });
      }
      schedule(0);
      return async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        await running;
      };
    },

    /** For operators: `owner`'s messages, newest first. */
    /** When the owner first received an event whose payload has `field` = `value`. */
    firstDelivery: (owner: string, eventType: string, field: string, value: string) =>
      store.firstDelivery(owner, eventType, field, value),

    async listMessages(
      owner: string,
      filter: WebhookMessageFilter = {},
    ): Promise<WebhookMessageRecord[]> {
      const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), 1000);
      return store.listMessages(owner, {
        status: filter.status,
        eventType: filter.eventType,
        limit,
      });
    },

    /** One of `owner`'s messages; undefined for an unknown id or another owner's message. */
    getMessage: (owner: string, messageId: string): Promise<WebhookMessageRecord | undefined> =>
      store.getMessage(owner, messageId),

    /**
     * Sends a dead or delivered message again, now, with its attempts reset (same id, so a
     * receiver that has it already can tell); the next worker pass delivers it. With
     * `owner` (a partner replaying its own messages), another owner's message is treated
     * as unknown. Throws WebhookError ERR_WEBHOOK_NOT_FOUND, ERR_WEBHOOK_NOT_REPLAYABLE
     * (still pending) or ERR_WEBHOOK_ENDPOINT_DISABLED.
     */
    async replay(messageId: string, opts: { owner?: string } = {}): Promise<void> {
      if (await store.replay(messageId, clock.now(), opts.owner)) return;
      const state = await store.messageState(messageId, opts.owner);
      if (!state)
        throw new WebhookError('ERR_WEBHOOK_NOT_FOUND', `No webhook message ${messageId}.`);
      if (state.endpointDisabled)
        throw new WebhookError(
          'ERR_WEBHOOK_ENDPOINT_DISABLED',
          `The endpoint of webhook message ${messageId} is disabled.`,
        );
      throw new WebhookError(
        'ERR_WEBHOOK_NOT_REPLAYABLE',
        `Webhook message ${messageId} is ${state.status}; only dead or delivered messages can be replayed.`,
      );
    },
  };
}

export type Webhooks = ReturnType<typeof createWebhooks>;

/** A short, log-safe reason: no URL, no response body. */
function describeNetworkError(err: unknown, timeoutMs: number): string {
  const error = err instanceof Error ? err : new Error(String(err));
  if (error.name === 'TimeoutError' || error.name === 'AbortError')
    return `timed out after ${timeoutMs} ms`;
  const cause = (error as { cause?: unknown }).cause;
  const code =
    cause && typeof cause === 'object' && 'code' in cause && typeof cause.code === 'string'
      ? cause.code
      : undefined;
  const text = code ? `connection failed: ${code}` : `${error.name}: ${error.message}`;
  return text.slice(0, MAX_ERROR_LENGTH);
}
