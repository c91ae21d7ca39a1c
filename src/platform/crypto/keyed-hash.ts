import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Shorter keys would make the blind index cheaper to brute-force than HMAC-SHA-256 allows. */
export const KEYED_HASH_MIN_KEY_LENGTH = 32;

/**
 * A blind index: HMAC-SHA-256 of `value`, lowercase hex. Store it beside the
 * encrypted field to find a row by exact value (a citizen by SNILS) without
 * keeping the value in the clear. A plain hash would not do: SNILS has only
 * ~10^11 values, so anyone with the table could hash them all.
 *
 * The value is hashed byte for byte: canonicalise it first (e.g. SNILS digits
 * only), or "123-456-789 00" and "12345678900" will not match. Use a separate
 * key per field so that equal values in different fields do not correlate.
 */
export function keyedHash(key: Buffer, value: string): string {
  if (!Buffer.isBuffer(key) || key.length < KEYED_HASH_MIN_KEY_LENGTH) {
    throw new TypeError(
      `keyedHash key must be a Buffer of at least ${KEYED_HASH_MIN_KEY_LENGTH} bytes`,
    );
  }
  if (typeof value !== 'string') throw new TypeError('keyedHash value must be a string');
  return createHmac('sha256', key).update(value, 'utf8').digest('hex');
}

/**
 * Compares secrets (tokens, codes) without leaking, through timing, how many
 * leading characters matched. Hashing both sides first gives equal-length
 * inputs, so the length of the secret does not leak either.
 */
export function timingSafeEqualString(a: string, b: string): boolean {
  if (typeof a !== 'string' || typeof b !== 'string') {
    throw new TypeError('timingSafeEqualString compares two strings');
  }
  const digestA = createHash('sha256').update(a, 'utf8').digest();
  const digestB = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(digestA, digestB);
}
