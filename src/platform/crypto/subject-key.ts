import {
  bytesToJson,
  bytesToText,
  decrypt,
  encrypt,
  requireAad,
  requireDataKey,
  type Plaintext,
} from './aead.js';
import { encodeBase64 } from './base64.js';
import { generateKey, type KeyEncryptionKeyring } from './key-encryption-key.js';
import {
  decodeBody,
  decodeWrappedKey,
  type KeySealedRecord,
  type WrappedKey,
} from './sealed-format.js';

/*
 * Per-subject keys make erasure possible ("crypto-shredding"): seal all of one
 * citizen's data with their own key, store that key only wrapped, and deleting
 * the wrapped key makes every copy of their data unreadable, backups included,
 * without hunting down each row.
 */

// Distinct from envelope.ts, so the two record kinds can never be swapped.
const AAD_PREFIX = 'soglasie/subject-sealed/1\0';

/** A fresh 32-byte data key for one data subject. Never store it unwrapped. */
export function createSubjectKey(): Buffer {
  return generateKey();
}

export async function wrapSubjectKey(
  keyring: KeyEncryptionKeyring,
  subjectKey: Buffer,
): Promise<WrappedKey> {
  requireDataKey(subjectKey);
  const { version, wrapped } = await keyring.wrap(subjectKey);
  return { kek: version, dk: encodeBase64(wrapped) };
}

/**
 * Throws ERR_SEALED_FORMAT on a mangled value, ERR_DECRYPT_FAILED on a wrong
 * or tampered one, ERR_KEK_UNKNOWN_VERSION if the keyring lacks its version.
 */
export async function unwrapSubjectKey(
  keyring: KeyEncryptionKeyring,
  wrapped: WrappedKey,
): Promise<Buffer> {
  const { kek, dk } = decodeWrappedKey(wrapped);
  return keyring.unwrap(kek, dk);
}

export function sealWithKey(dataKey: Buffer, plaintext: Plaintext, aad: string): KeySealedRecord {
  requireDataKey(dataKey);
  requireAad(aad);
  return encrypt(dataKey, plaintext, AAD_PREFIX + aad);
}

export function openWithKey(dataKey: Buffer, sealed: KeySealedRecord, aad: string): Buffer {
  requireDataKey(dataKey);
  requireAad(aad);
  return decrypt(dataKey, decodeBody(sealed), AAD_PREFIX + aad);
}

export function openTextWithKey(dataKey: Buffer, sealed: KeySealedRecord, aad: string): string {
  return bytesToText(openWithKey(dataKey, sealed, aad));
}

/** T is trusted, not checked: validate the result where it matters. */
export function openJsonWithKey<T>(dataKey: Buffer, sealed: KeySealedRecord, aad: string): T {
  return bytesToJson<T>(openWithKey(dataKey, sealed, aad));
}
