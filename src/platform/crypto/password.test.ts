import { hash as argon2Hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import {
  DUMMY_PASSWORD_HASH,
  PASSWORD_HASH_PARAMETERS,
  hashPassword,
  needsRehash,
  verifyAgainstDummy,
  verifyPassword,
} from './password.js';

// argon2 at production cost takes tens of milliseconds per call on two cores,
// so one hash is shared by every test that can use it.
const password = 'Correct horse батарея staple 42';
const stored = hashPassword(password);

describe('hashPassword / verifyPassword', () => {
  it('accepts the right password and rejects a wrong one', async () => {
    const hash = await stored;
    expect(await verifyPassword(hash, password)).toBe(true);
    expect(await verifyPassword(hash, `${password} `)).toBe(false);
  });

  it('stores argon2id with the published parameters and no plaintext', async () => {
    const hash = await stored;
    const { memoryCostKiB, timeCost, parallelism } = PASSWORD_HASH_PARAMETERS;
    expect(hash).toMatch(
      new RegExp(`^\\$argon2id\\$v=19\\$m=${memoryCostKiB},t=${timeCost},p=${parallelism}\\$`),
    );
    expect(hash).not.toContain('батарея');
    expect(needsRehash(hash)).toBe(false);
  });

  it('salts: the same password hashes differently each time', async () => {
    expect(await hashPassword(password)).not.toBe(await stored);
  });

  it('accepts a password typed with a combining character as its precomposed form', async () => {
    const precomposed = 'мой пароль'; // й is U+0439
    const decomposed = 'мои\u0306 пароль'; // и + combining breve, as some keyboards send it
    expect(decomposed).not.toBe(precomposed);
    expect(await verifyPassword(await hashPassword(precomposed), decomposed)).toBe(true);
  });

  it('returns false, not an exception, for a malformed or missing stored hash', async () => {
    expect(await verifyPassword('not a hash', password)).toBe(false);
    expect(await verifyPassword('$argon2id$v=19$m=19456,t=2,p=1$garbage', password)).toBe(false);
    expect(await verifyPassword(null as unknown as string, password)).toBe(false);
  });

  it('throws TypeError when the password is not a string (a caller bug)', async () => {
    await expect(hashPassword(undefined as unknown as string)).rejects.toThrow(TypeError);
    await expect(verifyPassword(await stored, 42 as unknown as string)).rejects.toThrow(TypeError);
  });
});

describe('timing equalisation', () => {
  it('the dummy hash uses the current parameters, so it costs what a real one does', () => {
    expect(needsRehash(DUMMY_PASSWORD_HASH)).toBe(false);
  });

  it('verifyAgainstDummy is false and takes about as long as a real verification', async () => {
    const hash = await stored;
    // Fastest of three: other test files share the CPU, and interference only
    // ever adds time, so the minimum is the stable measure.
    const fastest = async (f: () => Promise<boolean>) => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const start = performance.now();
        expect(await f()).toBe(false);
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    const known = await fastest(() => verifyPassword(hash, 'wrong password'));
    const unknown = await fastest(() => verifyAgainstDummy('wrong password'));
    const malformed = await fastest(() => verifyPassword('garbage', 'wrong password'));
    // A shortcut would be ~0 ms against tens of ms; the bound is loose on purpose.
    expect(unknown).toBeGreaterThan(known * 0.3);
    expect(malformed).toBeGreaterThan(known * 0.3);
  });
});

describe('needsRehash', () => {
  it('is true for hashes made with weaker or different parameters, and for junk', async () => {
    const weak = await argon2Hash('x', { memoryCost: 1024, timeCost: 1, parallelism: 1 });
    const argon2i = await argon2Hash('x', {
      memoryCost: 1024,
      timeCost: 2,
      parallelism: 1,
      algorithm: 1 as never,
    });
    expect(needsRehash(weak)).toBe(true);
    expect(needsRehash(argon2i)).toBe(true);
    expect(needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true);
    expect(needsRehash('')).toBe(true);
  });

  it('a hash that needs rehashing still verifies, so users can log in to upgrade it', async () => {
    const weak = await argon2Hash('old password', {
      memoryCost: 1024,
      timeCost: 1,
      parallelism: 1,
    });
    expect(await verifyPassword(weak, 'old password')).toBe(true);
  });
});
