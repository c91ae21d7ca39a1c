import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';
import {
  parseKeySealed,
  parseSealed,
  serializeSealed,
  type SealedRecord,
} from './sealed-format.js';

const record: SealedRecord = {
  v: 1,
  kek: 1,
  dk: Buffer.alloc(40, 1).toString('base64'),
  iv: Buffer.alloc(12, 2).toString('base64'),
  ct: Buffer.alloc(5, 3).toString('base64'),
  tag: Buffer.alloc(16, 4).toString('base64'),
};

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    if (error instanceof CryptoError) return error.code;
    return (error as Error).name;
  }
  return 'no error';
}

describe('parseSealed', () => {
  it('reads back what serializeSealed wrote, in a fixed field order', () => {
    const { tag, ct, iv, dk, kek, v } = record;
    const text = serializeSealed({ tag, ct, iv, dk, kek, v });
    expect(text).toBe(JSON.stringify(record));
    expect(parseSealed(text)).toEqual(record);
  });

  it('drops unknown fields', () => {
    expect(parseSealed(JSON.stringify({ ...record, extra: 'x' }))).toEqual(record);
  });

  it('throws ERR_SEALED_FORMAT on junk', () => {
    const junk = [
      '',
      'null',
      '[]',
      '"text"',
      '{',
      JSON.stringify({ ...record, v: 2 }),
      JSON.stringify({ ...record, kek: -1 }),
      JSON.stringify({ ...record, kek: 1.5 }),
      JSON.stringify({ ...record, dk: undefined }),
      JSON.stringify({ ...record, iv: Buffer.alloc(16).toString('base64') }),
      JSON.stringify({ ...record, tag: Buffer.alloc(12).toString('base64') }),
      JSON.stringify({ ...record, ct: 'AB=C' }),
      JSON.stringify({ ...record, ct: 7 }),
    ];
    for (const text of junk)
      expect(
        codeOf(() => parseSealed(text)),
        text,
      ).toBe('ERR_SEALED_FORMAT');
  });

  it('requires the wrapped key, unlike parseKeySealed', () => {
    const { kek: _kek, dk: _dk, ...bare } = record;
    expect(codeOf(() => parseSealed(JSON.stringify(bare)))).toBe('ERR_SEALED_FORMAT');
    expect(parseKeySealed(JSON.stringify(bare))).toEqual(bare);
    expect(parseKeySealed(serializeSealed(bare))).toEqual(bare);
  });

  it('throws TypeError when handed something that is not text', () => {
    expect(codeOf(() => parseSealed(undefined as unknown as string))).toBe('TypeError');
  });
});

describe('serializeSealed', () => {
  it('refuses (TypeError) to write a record that could not be read back', () => {
    expect(codeOf(() => serializeSealed({ ...record, iv: 'x' }))).toBe('TypeError');
    expect(codeOf(() => serializeSealed({ ...record, kek: 0 }))).toBe('TypeError');
  });
});
