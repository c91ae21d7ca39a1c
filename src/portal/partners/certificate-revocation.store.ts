import { sql, type Kysely } from 'kysely';

/**
 * Partner client certificates revoked before their end (a stolen key, a partner leaving):
 * the mTLS listener refuses them at once (certificate-revocation.ts). Kept for good, so
 * the record of what was revoked, when and why stays.
 */
export interface RevokedCertificateTable {
  /** RFC 8705 x5t#S256 of the certificate. */
  thumbprint: string;
  client_id: string;
  serial: string;
  reason: string | null;
  revoked_at: Date;
}

export interface RevocationTables {
  partner_certificate_revocations: RevokedCertificateTable;
}

/** Migration 0010. */
export async function createRevocationTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table partner_certificate_revocations (
      thumbprint text primary key,
      client_id text not null,
      serial text not null,
      reason text,
      revoked_at timestamptz not null
    )`.execute(db);
  await sql`create index partner_certificate_revocations_client_idx
    on partner_certificate_revocations (client_id)`.execute(db);
}

export function createRevocationStore(db: Kysely<RevocationTables>) {
  return {
    /** False when that certificate was revoked already (the first record stays). */
    async insert(row: RevokedCertificateTable): Promise<boolean> {
      const result = await db
        .insertInto('partner_certificate_revocations')
        .values(row)
        .onConflict((oc) => oc.column('thumbprint').doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },

    async byThumbprint(thumbprint: string): Promise<RevokedCertificateTable | undefined> {
      return db
        .selectFrom('partner_certificate_revocations')
        .selectAll()
        .where('thumbprint', '=', thumbprint)
        .executeTakeFirst();
    },

    /** Every revoked thumbprint with its partner: a short list, read whole. */
    async all(): Promise<Pick<RevokedCertificateTable, 'thumbprint' | 'client_id'>[]> {
      return db
        .selectFrom('partner_certificate_revocations')
        .select(['thumbprint', 'client_id'])
        .execute();
    },
  };
}

export type RevocationStore = ReturnType<typeof createRevocationStore>;
