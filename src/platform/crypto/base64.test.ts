import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64Strict, encodeBase64 } from './base64.js';

describe('decodeBase64Strict', () => {
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        expect(decodeBase64Strict(encodeBase64(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('rejects what Buffer.from would quietly accept', () => {
    for (const junk of ['QQ', 'QQ=', 'Q Q==', 'QR==', 'QQ==\n', 'QQ-_', '!!!!', 'QQ==QQ==']) {
      expect(decodeBase64Strict(junk), junk).toBeUndefined();
    }
    expect(decodeBase64Strict(42)).toBeUndefined();
    expect(decodeBase64Strict('')).toEqual(Buffer.alloc(0));
  });
});
