import { sql, type Kysely } from 'kysely';

/** The partner registry: legal entities allowed to call the partner API. */
export interface PartnerTable {
  client_id: string;
  name: string;
  /** RFC 8705 x5t#S256 of the partner's current client certificate. */
  cert_thumbprint: string;
  cert_serial: string;
  cert_expires_at: Date;
  status: 'active' | 'suspended';
  created_at: Date;
  /** J1: set when the partner accepts connections the citizen starts on the portal. */
  portal_connect: PortalConnectSettings | null;
  /** Partner API requests per rate-limit window; null = the configured default (PARTNER_RATE_LIMIT). */
  rate_limit: number | null;
}

/** What a partner asks for when a citizen connects it from the portal (J1). */
export interface PortalConnectSettings {
  /** How the partner calls its customer identifier, e.g. «Номер клиента». */
  client_ref_label: string;
  /** The `soglasie_consent` authorization details entry, as in a PAR request. */
  request: Record<string, unknown> & { scopes: string[] };
}

export interface PartnerTables {
  partners: PartnerTable;
}

export async function createPartnerTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table partners (
      client_id text primary key,
      name text not null,
      cert_thumbprint text not null unique,
      cert_serial text not null,
      cert_expires_at timestamptz not null,
      status text not null check (status in ('active', 'suspended')),
      created_at timestamptz not null
    )`.execute(db);
}

export async function addPortalConnect(db: Kysely<never>): Promise<void> {
  await sql`alter table partners add column portal_connect jsonb`.execute(db);
}

export async function addPartnerRateLimit(db: Kysely<never>): Promise<void> {
  await sql`alter table partners add column rate_limit integer check (rate_limit > 0)`.execute(db);
}

export function createPartnerStore(db: Kysely<PartnerTables>) {
  return {
    async insert(row: PartnerTable): Promise<void> {
      await db
        .insertInto('partners')
        .values({
          ...row,
          portal_connect: (row.portal_connect ? JSON.stringify(row.portal_connect) : null) as never,
        })
        .execute();
    },
    /** Active partners that accept connections started on the portal, by name. */
    async listConnectable(): Promise<PartnerTable[]> {
      return db
        .selectFrom('partners')
        .selectAll()
        .where('status', '=', 'active')
        .where('portal_connect', 'is not', null)
        .orderBy('name')
        .execute();
    },
    async byThumbprint(thumbprint: string): Promise<PartnerTable | undefined> {
      return db
        .selectFrom('partners')
        .selectAll()
        .where('cert_thumbprint', '=', thumbprint)
        .executeTakeFirst();
    },
    /** Sets the partner's own rate limit (null: back to the default); false if unknown. */
    async setRateLimit(clientId: string, limit: number | null): Promise<boolean> {
      const result = await db
        .updateTable('partners')
        .set({ rate_limit: limit })
        .where('client_id', '=', clientId)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async byClientId(clientId: string): Promise<PartnerTable | undefined> {
      return db
        .selectFrom('partners')
        .selectAll()
        .where('client_id', '=', clientId)
        .executeTakeFirst();
    },
  };
}

export type PartnerStore = ReturnType<typeof createPartnerStore>;
