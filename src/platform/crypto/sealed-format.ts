import { decodeBase64Strict } from './base64.js';
import { CryptoError } from './errors.js';
import { isKeyVersion } from './key-encryption-key.js';

/** Data sealed with a data key the caller holds (see createSubjectKey). */
export interface KeySealedRecord {
  v: 1;
  iv: string;
  ct: string;
  tag: string;
}

/** Data sealed with its own data key, stored wrapped beside it. */
export interface SealedRecord extends KeySealedRecord {
  /** Version of the key-encryption key that wrapped `dk`. */
  kek: number;
  /** Wrapped data key, base64. */
  dk: string;
}

/** A data key as stored: wrapped by a KEK version, never in the clear. */
export interface WrappedKey {
  kek: number;
  dk: string;
}

export const IV_LENGTH = 12; // 96 bits: the GCM nonce size that needs no extra hashing
export const TAG_LENGTH = 16; // the full tag; truncated tags are easier to forge

export interface DecodedBody {
  iv: Buffer;
  ct: Buffer;
  tag: Buffer;
}

function badFormat(what: string): CryptoError {
  return new CryptoError('ERR_SEALED_FORMAT', `sealed record is malformed: ${what}`);
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badFormat('not an object');
  }
  return value as Record<string, unknown>;
}

/**
 * Stored records are untrusted input: they may come straight from a jsonb
 * column without passing parseSealed, so every opener decodes through here.
 */
export function decodeBody(value: unknown): DecodedBody {
  const { v, iv, ct, tag } = asObject(value);
  if (v !== 1) throw badFormat('unsupported version');
  const ivBytes = decodeBase64Strict(iv);
  if (ivBytes?.length !== IV_LENGTH) throw badFormat('bad iv');
  const ctBytes = decodeBase64Strict(ct);
  if (ctBytes === undefined) throw badFormat('bad ct');
  const tagBytes = decodeBase64Strict(tag);
  if (tagBytes?.length !== TAG_LENGTH) throw badFormat('bad tag');
  return { iv: ivBytes, ct: ctBytes, tag: tagBytes };
}

export function decodeWrappedKey(value: unknown): { kek: number; dk: Buffer } {
  const { kek, dk } = asObject(value);
  if (!isKeyVersion(kek)) throw badFormat('bad kek version');
  const dkBytes = decodeBase64Strict(dk);
  if (dkBytes === undefined || dkBytes.length === 0) throw badFormat('bad dk');
  return { kek, dk: dkBytes };
}

function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') throw new TypeError('sealed text must be a string');
  try {
    return JSON.parse(text);
  } catch {
    throw badFormat('not JSON');
  }
}

/**
 * Compact JSON for a text or jsonb column, fields in a fixed order. Refuses
 * (TypeError) anything that parseSealed would not read back.
 */
export function serializeSealed(record: SealedRecord | KeySealedRecord): string {
  try {
    decodeBody(record);
    if ('kek' in record || 'dk' in record) {
      decodeWrappedKey(record);
      const { v, kek, dk, iv, ct, tag } = record as SealedRecord;
      return JSON.stringify({ v, kek, dk, iv, ct, tag });
    }
  } catch (error) {
    if (error instanceof CryptoError)
      throw new TypeError(`cannot serialize: ${error.message}`, { cause: error });
    throw error;
  }
  const { v, iv, ct, tag } = record;
  return JSON.stringify({ v, iv, ct, tag });
}

/**
 * Checks shape and encodings, not authenticity: only opening can tell a forged
 * record from a real one. Throws ERR_SEALED_FORMAT on junk. Unknown fields are
 * dropped.
 */
export function parseSealed(text: string): SealedRecord {
  const value = parseJson(text);
  decodeBody(value);
  decodeWrappedKey(value);
  const { v, kek, dk, iv, ct, tag } = value as SealedRecord;
  return { v, kek, dk, iv, ct, tag };
}

/** parseSealed for records made by sealWithKey, which carry no wrapped key. */
export function parseKeySealed(text: string): KeySealedRecord {
  const value = parseJson(text);
  decodeBody(value);
  const { v, iv, ct, tag } = value as KeySealedRecord;
  return { v, iv, ct, tag };
}
