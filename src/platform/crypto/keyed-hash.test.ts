import { describe, expect, it } from 'vitest';
import { keyedHash, timingSafeEqualString } from './keyed-hash.js';

const key = Buffer.alloc(32, 0x0b);

describe('keyedHash', () => {
  it('is HMAC-SHA-256 in hex (RFC 4231 test case 6)', () => {
    expect(
      keyedHash(Buffer.alloc(131, 0xaa), 'Test Using Larger Than Block-Size Key - Hash Key First'),
    ).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('finds the same citizen again: equal inputs and key give equal output', () => {
    expect(keyedHash(key, '11223344595')).toBe(keyedHash(key, '11223344595'));
    expect(keyedHash(key, '11223344595')).not.toBe(keyedHash(key, '11223344596'));
  });

  it('depends on the key, so a stolen table cannot be matched against all SNILS values', () => {
    expect(keyedHash(key, '11223344595')).not.toBe(keyedHash(Buffer.alloc(32, 1), '11223344595'));
    expect(keyedHash(key, '11223344595')).not.toContain('11223344595');
  });

  it('throws TypeError for a short key or a non-string value', () => {
    expect(() => keyedHash(Buffer.alloc(16), 'x')).toThrow(TypeError);
    expect(() => keyedHash('secret' as unknown as Buffer, 'x')).toThrow(TypeError);
    expect(() => keyedHash(key, 11223344595 as unknown as string)).toThrow(TypeError);
  });
});

describe('timingSafeEqualString', () => {
  it('is true only for identical strings', () => {
    expect(timingSafeEqualString('токен-123', 'токен-123')).toBe(true);
    expect(timingSafeEqualString('токен-123', 'токен-124')).toBe(false);
    expect(timingSafeEqualString('abc', 'abcd')).toBe(false);
    expect(timingSafeEqualString('', '')).toBe(true);
    expect(timingSafeEqualString('', 'a')).toBe(false);
  });

  it('throws TypeError for non-strings', () => {
    expect(() => timingSafeEqualString('a', undefined as unknown as string)).toThrow(TypeError);
  });
});
