import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';
import { memoryKeyring } from './key-encryption-key.js';
import { createSealer } from './envelope.js';
import {
  createSubjectKey,
  openJsonWithKey,
  openTextWithKey,
  openWithKey,
  sealWithKey,
  unwrapSubjectKey,
  wrapSubjectKey,
} from './subject-key.js';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    if (error instanceof CryptoError) return error.code;
    return (error as Error).name;
  }
  return 'no error';
}

async function asyncCodeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (error: Error) => (error instanceof CryptoError ? error.code : error.name),
  );
}

describe('per-subject keys', () => {
  it('seal and open many records of one citizen with their key', () => {
    const key = createSubjectKey();
    const address = sealWithKey(key, { city: 'Казань' }, 'addresses/1');
    const phone = sealWithKey(key, '+7 900 000-00-00', 'phones/1');
    expect(openJsonWithKey(key, address, 'addresses/1')).toEqual({ city: 'Казань' });
    expect(openTextWithKey(key, phone, 'phones/1')).toBe('+7 900 000-00-00');
    expect(Buffer.from(phone.ct, 'base64').includes(Buffer.from('+7 900'))).toBe(false);
  });

  it('the wrapped key survives a round trip through the keyring after rotation', async () => {
    const keyring = memoryKeyring();
    const key = createSubjectKey();
    const stored = await wrapSubjectKey(keyring, key);
    expect(stored.dk).not.toContain(key.toString('base64'));
    const record = sealWithKey(key, 'data', 'r/1');
    const rotated = keyring.addVersion();
    const restored = await unwrapSubjectKey(rotated, stored);
    expect(openTextWithKey(restored, record, 'r/1')).toBe('data');
  });

  it("deleting one citizen's wrapped key shreds their data and nobody else's", async () => {
    const keyring = memoryKeyring();
    const subjectKeys = new Map<string, Awaited<ReturnType<typeof wrapSubjectKey>>>();
    const records = new Map<string, ReturnType<typeof sealWithKey>>();
    for (const who of ['anna', 'boris']) {
      const key = createSubjectKey();
      subjectKeys.set(who, await wrapSubjectKey(keyring, key));
      records.set(who, sealWithKey(key, `${who}'s passport`, `citizens/${who}`));
    }

    subjectKeys.delete('anna');

    const boris = await unwrapSubjectKey(keyring, subjectKeys.get('boris')!);
    expect(openTextWithKey(boris, records.get('boris')!, 'citizens/boris')).toBe(
      "boris's passport",
    );
    // Anna's record carries no key material of its own: with her wrapped key
    // gone, no key the system still holds opens it.
    expect(Object.keys(records.get('anna')!).sort()).toEqual(['ct', 'iv', 'tag', 'v']);
    expect(codeOf(() => openWithKey(boris, records.get('anna')!, 'citizens/anna'))).toBe(
      'ERR_DECRYPT_FAILED',
    );
  });

  it('refuses tampering or a wrong row with ERR_DECRYPT_FAILED', () => {
    const key = createSubjectKey();
    const record = sealWithKey(key, 'secret', 'r/1');
    const flipped = Buffer.from(record.tag, 'base64');
    flipped[0]! ^= 1;
    expect(
      codeOf(() => openWithKey(key, { ...record, tag: flipped.toString('base64') }, 'r/1')),
    ).toBe('ERR_DECRYPT_FAILED');
    expect(codeOf(() => openWithKey(key, record, 'r/2'))).toBe('ERR_DECRYPT_FAILED');
  });

  it('records of the two kinds cannot be opened as each other', async () => {
    const keyring = memoryKeyring();
    const key = createSubjectKey();
    const wrapped = await wrapSubjectKey(keyring, key);
    const subjectRecord = sealWithKey(key, 'x', 'r/1');
    // Same key, same AAD, but presented as an envelope record.
    expect(
      await asyncCodeOf(createSealer(keyring).open({ ...subjectRecord, ...wrapped }, 'r/1')),
    ).toBe('ERR_DECRYPT_FAILED');
  });

  it('a tampered or mangled wrapped key is refused with a CryptoError', async () => {
    const keyring = memoryKeyring();
    const wrapped = await wrapSubjectKey(keyring, createSubjectKey());
    const bytes = Buffer.from(wrapped.dk, 'base64');
    bytes[3]! ^= 1;
    expect(
      await asyncCodeOf(unwrapSubjectKey(keyring, { ...wrapped, dk: bytes.toString('base64') })),
    ).toBe('ERR_DECRYPT_FAILED');
    expect(await asyncCodeOf(unwrapSubjectKey(keyring, { kek: 1, dk: '' }))).toBe(
      'ERR_SEALED_FORMAT',
    );
    expect(await asyncCodeOf(unwrapSubjectKey(keyring, { ...wrapped, kek: 9 }))).toBe(
      'ERR_KEK_UNKNOWN_VERSION',
    );
  });

  it('throws TypeError for a key of the wrong size or an empty aad', async () => {
    expect(() => sealWithKey(Buffer.alloc(16), 'x', 'r/1')).toThrow(TypeError);
    expect(() => sealWithKey(createSubjectKey(), 'x', '')).toThrow(TypeError);
    await expect(wrapSubjectKey(memoryKeyring(), Buffer.alloc(8))).rejects.toThrow(TypeError);
  });
});
