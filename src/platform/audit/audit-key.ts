import type { Kysely } from 'kysely';
import type { KeyEncryptionKeyring } from '../crypto/index.js';
import { loadOrCreateServiceKey, type ServiceKeyTables } from '../runtime/service-keys.js';
import { checkpointSigner, type NoteSigner } from './checkpoint.js';

/**
 * The checkpoint signing key: an Ed25519 seed kept like the service's other secrets, in
 * service_keys wrapped by the key-encryption key (so KEK rotation re-wraps it too). The
 * service signs with it; `soglasie audit verify` derives the public half from it.
 */
export const AUDIT_SIGNING_KEY = 'audit-checkpoints';
/** Key for the pseudonyms of personal values that reach the log (AuditEntry.details). */
export const AUDIT_PSEUDONYM_KEY = 'audit-pseudonyms';

export async function loadAuditSigner(
  db: Kysely<ServiceKeyTables>,
  keyring: KeyEncryptionKeyring,
  now: Date,
): Promise<NoteSigner> {
  return checkpointSigner(await loadOrCreateServiceKey(db, keyring, AUDIT_SIGNING_KEY, now));
}
