import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { encodeBase64 } from './base64.js';
import { CryptoError, decryptFailed } from './errors.js';
import { KEY_LENGTH } from './key-encryption-key.js';
import { IV_LENGTH, TAG_LENGTH, type DecodedBody, type KeySealedRecord } from './sealed-format.js';

/** What may be sealed; objects are stored as their JSON text. */
export type Plaintext = Buffer | Uint8Array | string | object;

export function requireAad(aad: unknown): asserts aad is string {
  // An empty AAD is almost always a forgotten argument, and would let a
  // ciphertext be copied to any row without detection.
  if (typeof aad !== 'string' || aad === '') {
    throw new TypeError('aad must be a non-empty string identifying the record');
  }
}

export function requireDataKey(key: unknown): asserts key is Buffer {
  if (!Buffer.isBuffer(key) || key.length !== KEY_LENGTH) {
    throw new TypeError(`data key must be a Buffer of ${KEY_LENGTH} bytes`);
  }
}

function toBytes(plaintext: Plaintext): Buffer {
  if (typeof plaintext === 'string') return Buffer.from(plaintext, 'utf8');
  if (plaintext instanceof Uint8Array) {
    return Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  }
  if (typeof plaintext === 'object' && plaintext !== null) {
    const json = JSON.stringify(plaintext);
    if (typeof json === 'string') return Buffer.from(json, 'utf8');
  }
  throw new TypeError('plaintext must be a Buffer, a string or a JSON-serialisable object');
}

/**
 * AES-256-GCM with a random 96-bit nonce. Random is safe here: a per-record
 * key encrypts once, and a subject key would need about 2^32 records before
 * nonce collisions become a concern.
 */
export function encrypt(key: Buffer, plaintext: Plaintext, aad: string): KeySealedRecord {
  const bytes = toBytes(plaintext);
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(bytes), cipher.final()]);
  return {
    v: 1,
    iv: encodeBase64(iv),
    ct: encodeBase64(ct),
    tag: encodeBase64(cipher.getAuthTag()),
  };
}

export function decrypt(key: Buffer, body: DecodedBody, aad: string): Buffer {
  try {
    // authTagLength pins the tag size, so a truncated tag is refused.
    const decipher = createDecipheriv('aes-256-gcm', key, body.iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(body.tag);
    return Buffer.concat([decipher.update(body.ct), decipher.final()]);
  } catch {
    throw decryptFailed();
  }
}

export function bytesToText(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CryptoError('ERR_PLAINTEXT_FORMAT', 'sealed plaintext is not valid UTF-8');
  }
}

export function bytesToJson<T>(bytes: Buffer): T {
  const text = bytesToText(bytes);
  try {
    return JSON.parse(text) as T;
  } catch {
    // The parser's message quotes the input, which is personal data.
    throw new CryptoError('ERR_PLAINTEXT_FORMAT', 'sealed plaintext is not valid JSON');
  }
}
