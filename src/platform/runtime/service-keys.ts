import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { KeyEncryptionKeyring } from '../crypto/index.js';

/**
 * Secrets a service keeps in its own database, wrapped by the key-encryption key, e.g.
 * the key for lookup hashes of encrypted identifiers (find a citizen by phone without
 * storing the phone in the clear). Wrapping them keeps the KMS the single root of trust.
 */
export interface ServiceKeyTable {
  name: string;
  kek_version: number;
  wrapped: string;
  created_at: Date;
}

export interface ServiceKeyTables {
  service_keys: ServiceKeyTable;
}

export async function createServiceKeyTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table service_keys (
      name text primary key,
      kek_version integer not null,
      wrapped text not null,
      created_at timestamptz not null
    )`.execute(db);
}

/** Loads the named key, creating it on first use; safe when two instances start at once. */
export async function loadOrCreateServiceKey(
  db: Kysely<ServiceKeyTables>,
  keyring: KeyEncryptionKeyring,
  name: string,
  now: Date,
): Promise<Buffer> {
  const existing = await db
    .selectFrom('service_keys')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirst();
  if (!existing) {
    const key = randomBytes(32);
    const { version, wrapped } = await keyring.wrap(key);
    await db
      .insertInto('service_keys')
      .values({ name, kek_version: version, wrapped: wrapped.toString('base64'), created_at: now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }
  const row = await db
    .selectFrom('service_keys')
    .selectAll()
    .where('name', '=', name)
    .executeTakeFirstOrThrow();
  return keyring.unwrap(row.kek_version, Buffer.from(row.wrapped, 'base64'));
}
