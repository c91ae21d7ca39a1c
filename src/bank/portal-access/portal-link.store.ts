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
}

export interface PortalLinkTables {
  portal_links: PortalLinkTable;
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

    async updateTokens(customerId: string, tokens: string): Promise<void> {
      await db
        .updateTable('portal_links')
        .set({ tokens })
        .where('customer_id', '=', customerId)
        .execute();
    },
  };
}

export type PortalLinkStore = ReturnType<typeof createPortalLinkStore>;
