import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CryptoError, decryptFailed } from './errors.js';

/**
 * The master keys that wrap per-record data keys. Only wrapped data keys are
 * ever stored next to the data, so that a database dump alone reveals nothing.
 * A KMS or HSM can implement this interface; the keys never need to leave it.
 */
export interface KeyEncryptionKeyring {
  /** Version used to wrap new data keys. */
  readonly currentVersion: number;
  wrap(dataKey: Buffer): Promise<{ version: number; wrapped: Buffer }>;
  unwrap(version: number, wrapped: Buffer): Promise<Buffer>;
}

/** AES-256: both key-encryption keys and data keys are 32 bytes. */
export const KEY_LENGTH = 32;

/*
 * Wrapping uses AES-256-KW (RFC 3394, NIST SP 800-38F) rather than AES-GCM:
 * - it is deterministic and takes no nonce, so there is no nonce-reuse limit
 *   however many data keys one KEK wraps (a random 96-bit GCM nonce is only
 *   safe for about 2^32 wraps per key, and we wrap one key per record);
 * - its built-in integrity check rejects a wrong KEK or a tampered wrapped key;
 * - it is the mechanism KMS and PKCS#11 HSMs offer (CKM_AES_KEY_WRAP), so
 *   moving the KEK into one later does not change stored data.
 * It has no associated data; that is fine because each data key is random and
 * used once, and the data itself is bound to its row by the GCM AAD.
 */
const WRAP_ALGORITHM = 'id-aes256-wrap';
const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex'); // RFC 3394 default IV

export function isKeyVersion(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

function requireKey(key: unknown, what: string): asserts key is Buffer {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
    throw new TypeError(`${what} must be a Buffer of ${KEY_LENGTH} bytes`);
  }
}

/**
 * Fresh key material straight from the CSPRNG. Deliberately not taken from the
 * injected IdGenerator: a repeatable test generator wired in by mistake would
 * silently produce guessable keys in production.
 */
export function generateKey(): Buffer {
  return randomBytes(KEY_LENGTH);
}

function wrapWith(kek: Buffer, dataKey: Buffer): Buffer {
  const cipher = createCipheriv(WRAP_ALGORITHM, kek, WRAP_IV);
  return Buffer.concat([cipher.update(dataKey), cipher.final()]);
}

function unwrapWith(kek: Buffer, wrapped: Buffer): Buffer {
  let dataKey: Buffer;
  try {
    const decipher = createDecipheriv(WRAP_ALGORITHM, kek, WRAP_IV);
    dataKey = Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    throw decryptFailed();
  }
  // A validly wrapped key of another size was not made by this module.
  if (dataKey.length !== KEY_LENGTH) throw decryptFailed();
  return dataKey;
}

/**
 * A keyring over key material already in memory; the file-backed and the
 * in-memory keyrings are both built on it. Keys are copied so that a caller
 * zeroing or reusing its buffer cannot change the keyring.
 */
export function keyringFromKeys(
  keys: Iterable<{ version: number; key: Buffer }>,
): KeyEncryptionKeyring {
  const byVersion = new Map<number, Buffer>();
  for (const { version, key } of keys) {
    if (!isKeyVersion(version)) throw new TypeError('key version must be an integer >= 1');
    requireKey(key, `key version ${version}`);
    if (byVersion.has(version)) throw new TypeError(`duplicate key version ${version}`);
    byVersion.set(version, Buffer.from(key));
  }
  if (byVersion.size === 0) throw new TypeError('a keyring needs at least one key');
  const currentVersion = Math.max(...byVersion.keys());
  const currentKey = byVersion.get(currentVersion) as Buffer;

  return Object.freeze({
    currentVersion,
    async wrap(dataKey: Buffer) {
      requireKey(dataKey, 'data key');
      return { version: currentVersion, wrapped: wrapWith(currentKey, dataKey) };
    },
    async unwrap(version: number, wrapped: Buffer) {
      if (!Buffer.isBuffer(wrapped)) throw new TypeError('wrapped key must be a Buffer');
      const kek = byVersion.get(version);
      if (kek === undefined) {
        throw new CryptoError(
          'ERR_KEK_UNKNOWN_VERSION',
          `key-encryption key version ${String(version)} is not in this keyring`,
        );
      }
      return unwrapWith(kek, wrapped);
    },
  });
}

/**
 * An in-memory keyring for tests and throwaway demos; its keys vanish with the
 * process. `addVersion` mimics `addKeyVersion` on a file keyring.
 */
export interface MemoryKeyring extends KeyEncryptionKeyring {
  /** Returns a new keyring with one more version; this one is unchanged. */
  addVersion(): MemoryKeyring;
}

export function memoryKeyring(
  keys: Iterable<{ version: number; key: Buffer }> = [{ version: 1, key: generateKey() }],
): MemoryKeyring {
  const material = [...keys].map(({ version, key }) => ({ version, key: Buffer.from(key) }));
  const keyring = keyringFromKeys(material);
  return Object.freeze({
    currentVersion: keyring.currentVersion,
    wrap: keyring.wrap,
    unwrap: keyring.unwrap,
    addVersion() {
      return memoryKeyring([
        ...material,
        { version: keyring.currentVersion + 1, key: generateKey() },
      ]);
    },
  });
}
