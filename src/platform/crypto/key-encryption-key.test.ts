import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';
import { keyringFromKeys, memoryKeyring } from './key-encryption-key.js';

async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CryptoError) return error.code;
    throw error;
  }
  return undefined;
}

describe('memoryKeyring', () => {
  it('unwraps what it wrapped, and the wrapped form does not contain the key', async () => {
    const keyring = memoryKeyring();
    const dataKey = randomBytes(32);
    const { version, wrapped } = await keyring.wrap(dataKey);
    expect(version).toBe(keyring.currentVersion);
    expect(wrapped.includes(dataKey)).toBe(false);
    expect(wrapped.includes(dataKey.subarray(0, 8))).toBe(false);
    expect(await keyring.unwrap(version, wrapped)).toEqual(dataKey);
  });

  it('refuses a tampered wrapped key with ERR_DECRYPT_FAILED', async () => {
    const keyring = memoryKeyring();
    const { version, wrapped } = await keyring.wrap(randomBytes(32));
    for (let i = 0; i < wrapped.length; i++) {
      const bad = Buffer.from(wrapped);
      bad[i]! ^= 0x01;
      expect(await rejectionCode(keyring.unwrap(version, bad))).toBe('ERR_DECRYPT_FAILED');
    }
    expect(await rejectionCode(keyring.unwrap(version, wrapped.subarray(8)))).toBe(
      'ERR_DECRYPT_FAILED',
    );
    expect(await rejectionCode(keyring.unwrap(version, Buffer.alloc(0)))).toBe(
      'ERR_DECRYPT_FAILED',
    );
  });

  it("refuses another keyring's wrapped key with ERR_DECRYPT_FAILED", async () => {
    const { version, wrapped } = await memoryKeyring().wrap(randomBytes(32));
    expect(await rejectionCode(memoryKeyring().unwrap(version, wrapped))).toBe(
      'ERR_DECRYPT_FAILED',
    );
  });

  it('names a missing version with ERR_KEK_UNKNOWN_VERSION', async () => {
    const keyring = memoryKeyring();
    const { wrapped } = await keyring.wrap(randomBytes(32));
    expect(await rejectionCode(keyring.unwrap(7, wrapped))).toBe('ERR_KEK_UNKNOWN_VERSION');
  });

  it('after addVersion wraps with the new version and still unwraps the old one', async () => {
    const v1 = memoryKeyring();
    const dataKey = randomBytes(32);
    const old = await v1.wrap(dataKey);
    const v2 = v1.addVersion();
    expect(v1.currentVersion).toBe(1);
    expect(v2.currentVersion).toBe(2);
    expect((await v2.wrap(randomBytes(32))).version).toBe(2);
    expect(await v2.unwrap(old.version, old.wrapped)).toEqual(dataKey);
  });

  it('throws TypeError for caller mistakes', async () => {
    const keyring = memoryKeyring();
    await expect(keyring.wrap(randomBytes(16))).rejects.toThrow(TypeError);
    await expect(keyring.wrap('key' as unknown as Buffer)).rejects.toThrow(TypeError);
    await expect(keyring.unwrap(1, 'x' as unknown as Buffer)).rejects.toThrow(TypeError);
    expect(() => keyringFromKeys([])).toThrow(TypeError);
    expect(() => keyringFromKeys([{ version: 0, key: randomBytes(32) }])).toThrow(TypeError);
    expect(() => keyringFromKeys([{ version: 1, key: randomBytes(31) }])).toThrow(TypeError);
    const key = randomBytes(32);
    expect(() =>
      keyringFromKeys([
        { version: 1, key },
        { version: 1, key },
      ]),
    ).toThrow(TypeError);
  });

  it('the highest version is current, whatever the order given', () => {
    const keyring = keyringFromKeys([
      { version: 3, key: randomBytes(32) },
      { version: 1, key: randomBytes(32) },
    ]);
    expect(keyring.currentVersion).toBe(3);
  });

  it('is not affected when the caller later zeroes the key it passed in', async () => {
    const key = randomBytes(32);
    const keyring = keyringFromKeys([{ version: 1, key }]);
    const dataKey = randomBytes(32);
    const { wrapped } = await keyring.wrap(dataKey);
    key.fill(0);
    expect(await keyring.unwrap(1, wrapped)).toEqual(dataKey);
  });
});
