import { sql, type Kysely } from 'kysely';

/** The bank's subscription to the portal's events, and the events it has already seen. */
export interface PortalWebhookTable {
  name: string;
  endpoint_id: string;
  /** Sealed signing secret (whsec_…). */
  secret: string;
  registered_at: Date;
}

export interface WebhookReceiptTable {
  id: string;
  event_type: string;
  received_at: Date;
}

export interface PortalEventTables {
  portal_webhook: PortalWebhookTable;
  webhook_receipts: WebhookReceiptTable;
}

export async function createPortalEventTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table portal_webhook (
      name text primary key,
      endpoint_id text not null,
      secret text not null,
      registered_at timestamptz not null
    )`.execute(db);
  await sql`
    create table webhook_receipts (
      id text primary key,
      event_type text not null,
      received_at timestamptz not null
    )`.execute(db);
}

export function createPortalEventStore(db: Kysely<PortalEventTables>) {
  return {
    async subscription(): Promise<PortalWebhookTable | undefined> {
      return db
        .selectFrom('portal_webhook')
        .selectAll()
        .where('name', '=', 'portal')
        .executeTakeFirst();
    },
    async saveSubscription(row: Omit<PortalWebhookTable, 'name'>): Promise<void> {
      await db
        .insertInto('portal_webhook')
        .values({ name: 'portal', ...row })
        .onConflict((oc) => oc.column('name').doUpdateSet(row))
        .execute();
    },
    /** Records an event id; false if it was seen before (at-least-once delivery). */
    async hasReceipt(id: string): Promise<boolean> {
      const row = await db
        .selectFrom('webhook_receipts')
        .select('id')
        .where('id', '=', id)
        .executeTakeFirst();
      return row !== undefined;
    },
    async firstReceipt(id: string, eventType: string, at: Date): Promise<boolean> {
      const result = await db
        .insertInto('webhook_receipts')
        .values({ id, event_type: eventType, received_at: at })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
  };
}

export type PortalEventStore = ReturnType<typeof createPortalEventStore>;
