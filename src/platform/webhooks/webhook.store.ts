import { sql, type ColumnType, type Kysely } from 'kysely';
import { inTransaction } from '../db/index.js';

/**
 * Outbound webhooks: where each owner (e.g. a partner's client_id) wants events sent,
 * and the transactional outbox of messages waiting to go there.
 */
export interface WebhookEndpointTable {
  /** ep_… */
  id: string;
  /** Whose endpoint this is, e.g. a partner client_id; events are enqueued per owner. */
  owner: string;
  url: string;
  /** The whsec_… signing secret, sealed (serializeSealed) under recordAad(table, id, 'secret'). */
  secret: string;
  created_at: Date;
  /** Set when the receiver answered 410 Gone; nothing is sent to it afterwards. */
  disabled_at: Date | null;
}

export type WebhookMessageStatus = 'pending' | 'delivered' | 'dead';

export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface WebhookMessageTable {
  /** msg_…, sent as the webhook-id header: receivers deduplicate on it. */
  id: string;
  endpoint_id: string;
  event_type: string;
  /** The event's data (the envelope's `data`); written as JSON text. */
  payload: ColumnType<JsonValue, string, string>;
  status: WebhookMessageStatus;
  /** Delivery attempts made so far (a claimed attempt counts once its outcome is known). */
  attempts: number;
  /** When the next attempt is due; while claimed, when the claim lapses. */
  next_attempt_at: Date;
  last_error: string | null;
  last_status: number | null;
  created_at: Date;
  delivered_at: Date | null;
}

export interface WebhookTables {
  webhook_endpoints: WebhookEndpointTable;
  webhook_messages: WebhookMessageTable;
}

export async function createWebhookTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table webhook_endpoints (
      id text primary key,
      owner text not null,
      url text not null,
      secret text not null,
      created_at timestamptz not null,
      disabled_at timestamptz
    )`.execute(db);
  await sql`create index webhook_endpoints_owner_idx on webhook_endpoints (owner)`.execute(db);
  await sql`
    create table webhook_messages (
      id text primary key,
      endpoint_id text not null references webhook_endpoints (id),
      event_type text not null,
      payload jsonb not null,
      status text not null check (status in ('pending', 'delivered', 'dead')),
      attempts integer not null default 0,
      next_attempt_at timestamptz not null,
      last_error text,
      last_status integer,
      created_at timestamptz not null,
      delivered_at timestamptz
    )`.execute(db);
  await sql`create index webhook_messages_due_idx on webhook_messages (status, next_attempt_at)`.execute(
    db,
  );
  await sql`create index webhook_messages_endpoint_idx on webhook_messages (endpoint_id, created_at)`.execute(
    db,
  );
}

/** A message claimed for delivery, with what is needed to send it. */
export interface ClaimedMessage {
  id: string;
  endpointId: string;
  eventType: string;
  payload: JsonValue;
  createdAt: Date;
  /** Attempts before this one. */
  attempts: number;
  /** The claim: the outcome is recorded only while next_attempt_at still equals it. */
  leaseUntil: Date;
  url: string;
  sealedSecret: string;
  endpointDisabled: boolean;
}

export interface MessageOutcome {
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
}

export interface WebhookMessageRecord {
  id: string;
  endpointId: string;
  eventType: string;
  status: WebhookMessageStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  lastStatus: number | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

export function createWebhookStore(db: Kysely<WebhookTables>) {
  /** The claim token: still pending and still carrying this worker's lease. */
  const claimed = (id: string, leaseUntil: Date) =>
    db
      .updateTable('webhook_messages')
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .where('next_attempt_at', '=', leaseUntil);

  /** The messages that went to `owner`'s endpoints, as listed to operators and partners. */
  const messagesOf = (owner: string) =>
    db
      .selectFrom('webhook_messages as m')
      .innerJoin('webhook_endpoints as e', 'e.id', 'm.endpoint_id')
      .select([
        'm.id',
        'm.endpoint_id',
        'm.event_type',
        'm.status',
        'm.attempts',
        'm.next_attempt_at',
        'm.last_error',
        'm.last_status',
        'm.created_at',
        'm.delivered_at',
      ])
      .where('e.owner', '=', owner);

  return {
    async insertEndpoint(row: WebhookEndpointTable): Promise<void> {
      await db.insertInto('webhook_endpoints').values(row).execute();
    },

    async activeEndpointIds(owner: string): Promise<string[]> {
      const rows = await db
        .selectFrom('webhook_endpoints')
        .select('id')
        .where('owner', '=', owner)
        .where('disabled_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map((r) => r.id);
    },

    async insertMessages(
      rows: Array<{
        id: string;
        endpointId: string;
        eventType: string;
        payloadJson: string;
        at: Date;
      }>,
    ): Promise<void> {
      if (rows.length === 0) return;
      await db
        .insertInto('webhook_messages')
        .values(
          rows.map((r) => ({
            id: r.id,
            endpoint_id: r.endpointId,
            event_type: r.eventType,
            payload: r.payloadJson,
            status: 'pending' as const,
            attempts: 0,
            next_attempt_at: r.at,
            last_error: null,
            last_status: null,
            created_at: r.at,
            delivered_at: null,
          })),
        )
        .execute();
    },

    /**
     * Claims up to `limit` due messages: FOR UPDATE SKIP LOCKED, so concurrent workers
     * never pick the same rows, then pushes next_attempt_at to `leaseUntil` and commits.
     * A worker that dies before recording the outcome leaves them due again at leaseUntil.
     */
    async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedMessage[]> {
      return inTransaction(db, async (trx) => {
        const rows = await trx
          .selectFrom('webhook_messages as m')
          .innerJoin('webhook_endpoints as e', 'e.id', 'm.endpoint_id')
          .select([
            'm.id',
            'm.endpoint_id',
            'm.event_type',
            'm.payload',
            'm.created_at',
            'm.attempts',
            'e.url',
            'e.secret',
            'e.disabled_at',
          ])
          .where('m.status', '=', 'pending')
          .where('m.next_attempt_at', '<=', now)
          .orderBy('m.next_attempt_at')
          .orderBy('m.id')
          .limit(limit)
          .forUpdate('m')
          .skipLocked()
          .execute();
        if (rows.length === 0) return [];
        await trx
          .updateTable('webhook_messages')
          .set({ next_attempt_at: leaseUntil })
          .where(
            'id',
            'in',
            rows.map((r) => r.id),
          )
          .execute();
        return rows.map((r) => ({
          id: r.id,
          endpointId: r.endpoint_id,
          eventType: r.event_type,
          payload: r.payload,
          createdAt: new Date(r.created_at),
          attempts: r.attempts,
          leaseUntil,
          url: r.url,
          sealedSecret: r.secret,
          endpointDisabled: r.disabled_at !== null,
        }));
      });
    },

    /** The record* methods return false when the claim was lost (lease lapsed, taken over). */
    async recordDelivered(
      id: string,
      leaseUntil: Date,
      outcome: MessageOutcome,
      at: Date,
    ): Promise<boolean> {
      const result = await claimed(id, leaseUntil)
        .set({
          status: 'delivered',
          attempts: outcome.attempts,
          last_status: outcome.lastStatus,
          last_error: null,
          delivered_at: at,
        })
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async recordRetry(
      id: string,
      leaseUntil: Date,
      outcome: MessageOutcome,
      nextAttemptAt: Date,
    ): Promise<boolean> {
      const result = await claimed(id, leaseUntil)
        .set({
          attempts: outcome.attempts,
          last_status: outcome.lastStatus,
          last_error: outcome.lastError,
          next_attempt_at: nextAttemptAt,
        })
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async recordDead(id: string, leaseUntil: Date, outcome: MessageOutcome): Promise<boolean> {
      const result = await claimed(id, leaseUntil)
        .set({
          status: 'dead',
          attempts: outcome.attempts,
          last_status: outcome.lastStatus,
          last_error: outcome.lastError,
        })
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /**
     * The receiver said 410 Gone: the endpoint is disabled and every message still pending
     * for it (this one included, even if claimed elsewhere) is dead. Returns how many died.
     */
    async disableEndpoint(endpointId: string, at: Date, reason: string): Promise<number> {
      return inTransaction(db, async (trx) => {
        await trx
          .updateTable('webhook_endpoints')
          .set({ disabled_at: at })
          .where('id', '=', endpointId)
          .where('disabled_at', 'is', null)
          .execute();
        const killed = await trx
          .updateTable('webhook_messages')
          .set({ status: 'dead', last_error: reason })
          .where('endpoint_id', '=', endpointId)
          .where('status', '=', 'pending')
          .executeTakeFirst();
        return Number(killed.numUpdatedRows);
      });
    },

    /** When an event about `value` (a top-level payload field) first reached the owner. */
    async firstDelivery(
      owner: string,
      eventType: string,
      field: string,
      value: string,
    ): Promise<Date | undefined> {
      const row = await db
        .selectFrom('webhook_messages as m')
        .innerJoin('webhook_endpoints as e', 'e.id', 'm.endpoint_id')
        .select('m.delivered_at')
        .where('e.owner', '=', owner)
        .where('m.event_type', '=', eventType)
        .where('m.status', '=', 'delivered')
        .where(sql<string>`m.payload ->> ${field}`, '=', value)
        .orderBy('m.delivered_at')
        .limit(1)
        .executeTakeFirst();
      return row?.delivered_at ? new Date(row.delivered_at) : undefined;
    },

    async listMessages(
      owner: string,
      filter: {
        status?: WebhookMessageStatus | undefined;
        eventType?: string | undefined;
        limit: number;
      },
    ): Promise<WebhookMessageRecord[]> {
      let query = messagesOf(owner);
      if (filter.status) query = query.where('m.status', '=', filter.status);
      if (filter.eventType) query = query.where('m.event_type', '=', filter.eventType);
      const rows = await query
        .orderBy('m.created_at', 'desc')
        .orderBy('m.id', 'desc')
        .limit(filter.limit)
        .execute();
      return rows.map(toRecord);
    },

    /** One message, only if it went to an endpoint of `owner`. */
    async getMessage(owner: string, id: string): Promise<WebhookMessageRecord | undefined> {
      const row = await messagesOf(owner).where('m.id', '=', id).executeTakeFirst();
      return row && toRecord(row);
    },

    /** `owner` given: another owner's message is reported as absent. */
    async messageState(
      id: string,
      owner?: string,
    ): Promise<{ status: WebhookMessageStatus; endpointDisabled: boolean } | undefined> {
      let query = db
        .selectFrom('webhook_messages as m')
        .innerJoin('webhook_endpoints as e', 'e.id', 'm.endpoint_id')
        .select(['m.status', 'e.disabled_at'])
        .where('m.id', '=', id);
      if (owner !== undefined) query = query.where('e.owner', '=', owner);
      const row = await query.executeTakeFirst();
      return row && { status: row.status, endpointDisabled: row.disabled_at !== null };
    },

    /**
     * Makes a delivered or dead message due at `at` with its attempts reset. Only when it
     * is in one of those states and its endpoint is active (and belongs to `owner`, when
     * given), atomically: false otherwise.
     */
    async replay(id: string, at: Date, owner?: string): Promise<boolean> {
      const result = await db
        .updateTable('webhook_messages')
        .set({ status: 'pending', attempts: 0, next_attempt_at: at, delivered_at: null })
        .where('id', '=', id)
        .where('status', 'in', ['delivered', 'dead'])
        .where((eb) => {
          let endpoint = eb
            .selectFrom('webhook_endpoints as e')
            .select('e.id')
            .whereRef('e.id', '=', 'webhook_messages.endpoint_id')
            .where('e.disabled_at', 'is', null);
          if (owner !== undefined) endpoint = endpoint.where('e.owner', '=', owner);
          return eb.exists(endpoint);
        })
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}

export type WebhookStore = ReturnType<typeof createWebhookStore>;

function toRecord(r: {
  id: string;
  endpoint_id: string;
  event_type: string;
  status: WebhookMessageStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  last_status: number | null;
  created_at: Date;
  delivered_at: Date | null;
}): WebhookMessageRecord {
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    eventType: r.event_type,
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: new Date(r.next_attempt_at),
    lastError: r.last_error,
    lastStatus: r.last_status,
    createdAt: new Date(r.created_at),
    deliveredAt: r.delivered_at ? new Date(r.delivered_at) : null,
  };
}
