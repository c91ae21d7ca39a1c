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

export function createPartnerStore(db: Kysely<PartnerTables>) {
  return {
    async insert(row: PartnerTable): Promise<void> {
      await db.insertInto('partners').values(row).execute();
    },
    async byThumbprint(thumbprint: string): Promise<PartnerTable | undefined> {
      return db
        .selectFrom('partners')
        .selectAll()
        .where('cert_thumbprint', '=', thumbprint)
        .executeTakeFirst();
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
