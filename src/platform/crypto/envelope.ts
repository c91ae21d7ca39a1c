import { bytesToJson, bytesToText, decrypt, encrypt, requireAad, type Plaintext } from './aead.js';
import { encodeBase64 } from './base64.js';
import { generateKey, type KeyEncryptionKeyring } from './key-encryption-key.js';
import { decodeBody, decodeWrappedKey, type SealedRecord } from './sealed-format.js';

/*
 * Distinct from the prefix in subject-key.ts, so that ciphertext made for one
 * kind of record is never accepted as the other, whatever keys end up shared.
 */
const AAD_PREFIX = 'soglasie/sealed/1\0';

/**
 * Builds an AAD naming exactly one stored value. Encoding the parts as a JSON
 * array keeps ("a:b", "c") and ("a", "b:c") apart, which a separator would not.
 */
export function recordAad(table: string, id: string, column?: string): string {
  const parts = column === undefined ? [table, id] : [table, id, column];
  for (const part of parts) {
    if (typeof part !== 'string' || part === '') {
      throw new TypeError('recordAad parts must be non-empty strings');
    }
  }
  return JSON.stringify(parts);
}

export interface Sealer {
  /** Encrypts under a fresh data key, wrapped by the keyring's current KEK. */
  seal(plaintext: Plaintext, aad: string): Promise<SealedRecord>;
  open(sealed: SealedRecord, aad: string): Promise<Buffer>;
  /** T is trusted, not checked: validate the result where it matters. */
  openJson<T>(sealed: SealedRecord, aad: string): Promise<T>;
  openText(sealed: SealedRecord, aad: string): Promise<string>;
}

/**
 * Envelope encryption: every record gets its own AES-256-GCM data key, stored
 * wrapped by the KEK. Rotating the KEK is then just adding a version: old
 * records keep opening, and one leaked data key exposes one record.
 *
 * `aad` must say where the record lives (see recordAad), so that a ciphertext
 * copied to another row fails to open rather than showing one citizen's data
 * under another's name.
 *
 * open* throw ERR_DECRYPT_FAILED on any tampering or wrong AAD,
 * ERR_SEALED_FORMAT on a malformed record and ERR_KEK_UNKNOWN_VERSION when the
 * keyring lacks the KEK version the record names.
 */
export function createSealer(keyring: KeyEncryptionKeyring): Sealer {
  if (
    typeof keyring !== 'object' ||
    keyring === null ||
    typeof keyring.wrap !== 'function' ||
    typeof keyring.unwrap !== 'function'
  ) {
    throw new TypeError('createSealer needs a KeyEncryptionKeyring');
  }

  async function seal(plaintext: Plaintext, aad: string): Promise<SealedRecord> {
    requireAad(aad);
    const dataKey = generateKey();
    try {
      const { iv, ct, tag } = encrypt(dataKey, plaintext, AAD_PREFIX + aad);
      const { version, wrapped } = await keyring.wrap(dataKey);
      return { v: 1, kek: version, dk: encodeBase64(wrapped), iv, ct, tag };
    } finally {
      // Best effort: JS cannot promise the key leaves no other copy in memory.
      dataKey.fill(0);
    }
  }

  async function open(sealed: SealedRecord, aad: string): Promise<Buffer> {
    requireAad(aad);
    const body = decodeBody(sealed);
    const { kek, dk } = decodeWrappedKey(sealed);
    const dataKey = await keyring.unwrap(kek, dk);
    try {
      return decrypt(dataKey, body, AAD_PREFIX + aad);
    } finally {
      dataKey.fill(0);
    }
  }

  return Object.freeze({
    seal,
    open,
    openJson: async <T>(sealed: SealedRecord, aad: string) =>
      bytesToJson<T>(await open(sealed, aad)),
    openText: async (sealed: SealedRecord, aad: string) => bytesToText(await open(sealed, aad)),
  });
}
