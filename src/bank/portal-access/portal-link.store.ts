import { sql, type Kysely } from 'kysely';

/**
 * The bank's vault of portal data: per customer, the link to their portal consent, the
 * tokens and the data fetched under it, sealed with a data key of that customer alone.
 * Deleting the row destroys the wrapped key, and with it every copy of the data.
 */
export interface PortalLinkTable {
  customer_id: string;
  consent_id: string;
  portal_sub: string;
  scopes: string[];
  consent_expires_at: Date;
  linked_at: Date;
  /** Wrapped per-customer data key (JSON WrappedKey). */
  subject_key: string;
  /** Sealed {access_token, refresh_token, access_expires_at}. */
  tokens: string;
  /** Sealed fetched data, by resource. */
  data: string;
  data_fetched_at: Date;
  /** Since when the citizen has paused the consent at the portal (reads refused), if so. */
  paused_at?: Date | null;
}

/** What happened to a customer's link, for the customer to see (no personal data). */
export type PortalLinkEventKind = 'revoked' | 'expired' | 'inactive' | 'unlinked';

export interface PortalLinkEventTable {
  id: string;
  customer_id: string;
  consent_id: string;
  kind: PortalLinkEventKind;
  at: Date;
  /** When the customer was shown it (a notice on their next page view); null until then. */
  seen_at: Date | null;
}

export interface PortalLinkTables {
  portal_links: PortalLinkTable;
  portal_link_events: PortalLinkEventTable;
}

export async function createPortalLinkTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table portal_links (
      customer_id text primary key references customers (id),
      consent_id text not null unique,
      portal_sub text not null,
      scopes text[] not null,
      consent_expires_at timestamptz not null,
      linked_at timestamptz not null,
      subject_key text not null,
      tokens text not null,
      data text not null,
      data_fetched_at timestamptz not null
    )`.execute(db);
}

export async function createPortalLinkEventTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table portal_link_events (
      id text primary key,
      customer_id text not null references customers (id),
      consent_id text not null,
      kind text not null check (kind in ('revoked', 'expired', 'inactive', 'unlinked')),
      at timestamptz not null,
      seen_at timestamptz
    )`.execute(db);
  await sql`create index portal_link_events_customer_idx on portal_link_events (customer_id, at desc)`.execute(
    db,
  );
}

export function createPortalLinkStore(db: Kysely<PortalLinkTables>) {
  return {
    /** A new link replaces an old one: the old data key goes with it. */
    async upsert(row: PortalLinkTable): Promise<void> {
      await db
        .insertInto('portal_links')
        .values(row)
        .onConflict((oc) => oc.column('customer_id').doUpdateSet(row))
        .execute();
    },
    async get(customerId: string): Promise<PortalLinkTable | undefined> {
      return db
        .selectFrom('portal_links')
        .selectAll()
        .where('customer_id', '=', customerId)
        .executeTakeFirst();
    },
    /** Deletes the link with its wrapped key: what was sealed under it cannot be read again. */
    async delete(customerId: string): Promise<boolean> {
      const result = await db
        .deleteFrom('portal_links')
        .where('customer_id', '=', customerId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Deletes the link made under a consent (the portal says it ended); its scopes, if any. */
    async deleteByConsent(consentId: string): Promise<string[] | undefined> {
      const row = await db
        .deleteFrom('portal_links')
        .where('consent_id', '=', consentId)
        .returning('scopes')
        .executeTakeFirst();
      return row?.scopes;
    },

    /**
     * Deletes the link made under a consent and records why, in one transaction: the
     * customer's history holds the event if and only if the data went.
     */
    async endByConsent(
      consentId: string,
      event: Pick<PortalLinkEventTable, 'id' | 'kind' | 'at' | 'seen_at'>,
    ): Promise<{ customer_id: string; scopes: string[] } | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .deleteFrom('portal_links')
          .where('consent_id', '=', consentId)
          .returning(['customer_id', 'scopes'])
          .executeTakeFirst();
        if (!row) return undefined;
        await trx
          .insertInto('portal_link_events')
          .values({ ...event, customer_id: row.customer_id, consent_id: consentId })
          .execute();
        return row;
      });
    },

    /**
     * Replaces the tokens of the link under this consent only: a refresh that finishes
     * after the link was deleted (or replaced by a newer consent) writes nothing.
     */
    async updateTokens(customerId: string, consentId: string, tokens: string): Promise<boolean> {
      const result = await db
        .updateTable('portal_links')
        .set({ tokens })
        .where('customer_id', '=', customerId)
        .where('consent_id', '=', consentId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The link's state without its sealed columns (for the live status, polled often). */
    async state(
      customerId: string,
    ): Promise<
      | Pick<PortalLinkTable, 'consent_id' | 'linked_at' | 'consent_expires_at' | 'paused_at'>
      | undefined
    > {
      return db
        .selectFrom('portal_links')
        .select(['consent_id', 'linked_at', 'consent_expires_at', 'paused_at'])
        .where('customer_id', '=', customerId)
        .executeTakeFirst();
    },

    /** The portal paused (a date) or resumed (null) the consent; false if no link has it. */
    async setPaused(consentId: string, at: Date | null): Promise<boolean> {
      const result = await db
        .updateTable('portal_links')
        .set({ paused_at: at })
        .where('consent_id', '=', consentId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    /** The customer's link history, newest first. */
    async events(customerId: string, limit = 20): Promise<PortalLinkEventTable[]> {
      return db
        .selectFrom('portal_link_events')
        .selectAll()
        .where('customer_id', '=', customerId)
        .orderBy('at', 'desc')
        .limit(limit)
        .execute();
    },

    /** Events the customer has not been shown yet, marked shown as they are taken. */
    async takeUnseen(customerId: string, at: Date): Promise<PortalLinkEventTable[]> {
      const rows = await db
        .updateTable('portal_link_events')
        .set({ seen_at: at })
        .where('customer_id', '=', customerId)
        .where('seen_at', 'is', null)
        .returningAll()
        .execute();
      return rows.sort((a, b) => new Date(b.at).getTime() - new Date(a.at).getTime());
    },
  };
}

export type PortalLinkStore = ReturnType<typeof createPortalLinkStore>;
