import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CryptoError,
  createSealer,
  memoryKeyring,
  parseSealed,
  recordAad,
  serializeSealed,
  type SealedRecord,
} from './index.js';

async function failureCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CryptoError) return error.code;
    throw error;
  }
  return 'no error';
}

/** Flips one bit of a base64 field, keeping it valid base64 of the same length. */
function flipBit(b64: string, byte = 0): string {
  const bytes = Buffer.from(b64, 'base64');
  bytes[byte]! ^= 0x01;
  return bytes.toString('base64');
}

const aad = recordAad('citizens', '0d3c1a7e-0001', 'passport');
const citizen = { name: 'Иванов Иван Иванович', snils: '112-233-445 95', passport: '4510 123456' };

describe('createSealer round trip', () => {
  const sealer = createSealer(memoryKeyring());

  it('opens what it sealed: objects, text and bytes', async () => {
    expect(await sealer.openJson(await sealer.seal(citizen, aad), aad)).toEqual(citizen);
    expect(await sealer.openText(await sealer.seal('Иванов', aad), aad)).toBe('Иванов');
    const bytes = Buffer.from([0, 1, 2, 255]);
    expect(await sealer.open(await sealer.seal(bytes, aad), aad)).toEqual(bytes);
    expect(await sealer.openText(await sealer.seal('', aad), aad)).toBe('');
  });

  it('round-trips arbitrary bytes and record ids', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array(), fc.string({ minLength: 1 }), async (bytes, id) => {
        const bound = recordAad('t', id);
        const record = await sealer.seal(Buffer.from(bytes), bound);
        expect(await sealer.open(record, bound)).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 50 },
    );
  });

  it('the stored record contains no plaintext bytes', async () => {
    const record = await sealer.seal(citizen, aad);
    const stored = serializeSealed(record);
    const ct = Buffer.from(record.ct, 'base64');
    for (const value of Object.values(citizen)) {
      expect(stored).not.toContain(value);
      expect(ct.includes(Buffer.from(value, 'utf8'))).toBe(false);
    }
    expect(stored).not.toContain(Buffer.from(citizen.snils).toString('base64'));
  });

  it('uses a fresh data key and nonce per record', async () => {
    const a = await sealer.seal('same', aad);
    const b = await sealer.seal('same', aad);
    expect(a.dk).not.toBe(b.dk);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ct).not.toBe(b.ct);
  });
});

describe('createSealer refuses tampered or misplaced records', () => {
  const sealer = createSealer(memoryKeyring());

  it('with ERR_DECRYPT_FAILED for any change to ct, tag, iv or wrapped key', async () => {
    const record = await sealer.seal(citizen, aad);
    const variants: SealedRecord[] = [
      { ...record, ct: flipBit(record.ct) },
      { ...record, ct: flipBit(record.ct, Buffer.from(record.ct, 'base64').length - 1) },
      { ...record, tag: flipBit(record.tag) },
      { ...record, tag: flipBit(record.tag, 15) },
      { ...record, iv: flipBit(record.iv) },
      { ...record, iv: flipBit(record.iv, 11) },
      { ...record, dk: flipBit(record.dk) },
      { ...record, ct: Buffer.from(record.ct, 'base64').subarray(1).toString('base64') },
    ];
    for (const variant of variants) {
      expect(await failureCode(sealer.open(variant, aad))).toBe('ERR_DECRYPT_FAILED');
    }
  });

  it('with ERR_DECRYPT_FAILED when moved to another row, column or table', async () => {
    const record = await sealer.seal(citizen, aad);
    for (const elsewhere of [
      recordAad('citizens', '0d3c1a7e-0002', 'passport'),
      recordAad('citizens', '0d3c1a7e-0001', 'snils'),
      recordAad('bank_clients', '0d3c1a7e-0001', 'passport'),
    ]) {
      expect(await failureCode(sealer.open(record, elsewhere))).toBe('ERR_DECRYPT_FAILED');
    }
  });

  it('with ERR_DECRYPT_FAILED when the data key is swapped for another record', async () => {
    const a = await sealer.seal('a', aad);
    const b = await sealer.seal('b', aad);
    expect(await failureCode(sealer.open({ ...a, dk: b.dk }, aad))).toBe('ERR_DECRYPT_FAILED');
  });

  it('with one vague message whatever the cause', async () => {
    const record = await sealer.seal(citizen, aad);
    const messages = new Set<string>();
    for (const promise of [
      sealer.open({ ...record, tag: flipBit(record.tag) }, aad),
      sealer.open({ ...record, dk: flipBit(record.dk) }, aad),
      sealer.open(record, 'other'),
    ]) {
      await promise.catch((error: Error) => messages.add(error.message));
    }
    expect([...messages]).toEqual(['decryption failed']);
  });

  it("cannot be opened under another installation's keyring", async () => {
    const record = await sealer.seal(citizen, aad);
    const other = createSealer(memoryKeyring());
    expect(await failureCode(other.open(record, aad))).toBe('ERR_DECRYPT_FAILED');
  });

  it('reports a KEK version the keyring lacks as ERR_KEK_UNKNOWN_VERSION', async () => {
    const rotated = memoryKeyring().addVersion();
    const record = await createSealer(rotated).seal('x', aad);
    expect(record.kek).toBe(2);
    const older = createSealer(memoryKeyring());
    expect(await failureCode(older.open(record, aad))).toBe('ERR_KEK_UNKNOWN_VERSION');
  });

  it('reports a malformed record as ERR_SEALED_FORMAT', async () => {
    const record = await sealer.seal('x', aad);
    const junk: unknown[] = [
      null,
      'text',
      { ...record, v: 2 },
      { ...record, kek: 0 },
      { ...record, kek: '1' },
      { ...record, dk: '' },
      { ...record, iv: 'AAAA' },
      { ...record, tag: record.tag.slice(0, 8) },
      { ...record, ct: 'not base64!' },
    ];
    for (const value of junk) {
      expect(await failureCode(sealer.open(value as SealedRecord, aad))).toBe('ERR_SEALED_FORMAT');
    }
  });
});

describe('createSealer with key rotation', () => {
  it('records sealed under v1 open after a new version is added; new ones use v2', async () => {
    const v1 = memoryKeyring();
    const old = await createSealer(v1).seal(citizen, aad);
    const v2 = createSealer(v1.addVersion());
    const fresh = await v2.seal(citizen, aad);
    expect([old.kek, fresh.kek]).toEqual([1, 2]);
    expect(await v2.openJson(old, aad)).toEqual(citizen);
    expect(await v2.openJson(fresh, aad)).toEqual(citizen);
  });
});

describe('caller mistakes throw TypeError', () => {
  const sealer = createSealer(memoryKeyring());

  it('for a missing or empty aad', async () => {
    await expect(sealer.seal('x', '')).rejects.toThrow(TypeError);
    await expect(sealer.seal('x', undefined as unknown as string)).rejects.toThrow(TypeError);
    const record = await sealer.seal('x', aad);
    await expect(sealer.open(record, '')).rejects.toThrow(TypeError);
  });

  it('for a plaintext that cannot be stored', async () => {
    await expect(sealer.seal(null as unknown as object, aad)).rejects.toThrow(TypeError);
    await expect(sealer.seal(undefined as unknown as object, aad)).rejects.toThrow(TypeError);
    await expect(sealer.seal({ n: 1n }, aad)).rejects.toThrow(TypeError);
  });

  it('for something that is not a keyring', () => {
    expect(() => createSealer({} as never)).toThrow(TypeError);
  });
});

describe('openJson / openText on plaintext of the wrong kind', () => {
  it('throws ERR_PLAINTEXT_FORMAT without echoing the plaintext', async () => {
    const sealer = createSealer(memoryKeyring());
    const record = await sealer.seal('паспорт 4510 123456', aad);
    const error = await sealer.openJson(record, aad).catch((e: CryptoError) => e);
    expect(error).toMatchObject({ code: 'ERR_PLAINTEXT_FORMAT' });
    expect((error as Error).message).not.toContain('4510');
    const binary = await sealer.seal(Buffer.from([0xff, 0xfe, 0xfd]), aad);
    expect(await failureCode(sealer.openText(binary, aad))).toBe('ERR_PLAINTEXT_FORMAT');
  });
});

describe('recordAad', () => {
  it('keeps differently split ids apart', () => {
    expect(recordAad('a:b', 'c')).not.toBe(recordAad('a', 'b:c'));
    expect(recordAad('t', '1', 'x')).not.toBe(recordAad('t', '1'));
  });

  it('throws TypeError on an empty part', () => {
    expect(() => recordAad('', '1')).toThrow(TypeError);
    expect(() => recordAad('t', '')).toThrow(TypeError);
    expect(() => recordAad('t', '1', '')).toThrow(TypeError);
  });
});

describe('serializeSealed / parseSealed', () => {
  it('round-trips through a text column and still opens', async () => {
    const sealer = createSealer(memoryKeyring());
    const record = await sealer.seal(citizen, aad);
    const parsed = parseSealed(serializeSealed(record));
    expect(parsed).toEqual(record);
    expect(await sealer.openJson(parsed, aad)).toEqual(citizen);
  });
});
