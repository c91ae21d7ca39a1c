import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../clock.js';
import { CryptoError } from './errors.js';
import { createSealer } from './envelope.js';
import { KEK_FILE_FORMAT, addKeyVersion, openFileKeyring } from './kek-file.js';

const posix = process.platform !== 'win32';

let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'soglasie-kek-'));
  path = join(dir, 'kek.json');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<CryptoError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CryptoError) return error;
    throw error;
  }
  throw new Error('expected a CryptoError, got success');
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('openFileKeyring: first open', () => {
  it.runIf(posix)(
    'creates the file with mode 0600 and a missing parent dir with 0700',
    async () => {
      const nested = join(dir, 'secrets', 'kek.json');
      await openFileKeyring(nested);
      expect(await mode(nested)).toBe(0o600);
      expect(await mode(join(dir, 'secrets'))).toBe(0o700);
    },
  );

  it('writes the documented format with one 32-byte key and createdAt from the clock', async () => {
    const clock = manualClock('2026-12-01T09:00:00Z');
    const keyring = await openFileKeyring(path, { clock });
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(doc.format).toBe(KEK_FILE_FORMAT);
    expect(doc.keys).toHaveLength(1);
    expect(doc.keys[0].version).toBe(1);
    expect(Buffer.from(doc.keys[0].key, 'base64')).toHaveLength(32);
    expect(doc.keys[0].createdAt).toBe('2026-12-01T09:00:00.000Z');
    expect(keyring.currentVersion).toBe(1);
  });

  it('leaves no temp files behind', async () => {
    await openFileKeyring(path);
    await addKeyVersion(path);
    expect(await readdir(dir)).toEqual(['kek.json']);
  });

  it('data sealed before a reopen still opens after it (same key on disk)', async () => {
    const before = createSealer(await openFileKeyring(path));
    const record = await before.seal('СНИЛС 112-233-445 95', 'citizens/1/snils');
    const after = createSealer(await openFileKeyring(path));
    expect(await after.openText(record, 'citizens/1/snils')).toBe('СНИЛС 112-233-445 95');
  });

  it('processes racing to create the file all end up with the one key that was kept', async () => {
    const keyrings = await Promise.all(Array.from({ length: 6 }, () => openFileKeyring(path)));
    const record = await createSealer(keyrings[0]!).seal('shared', 'aad');
    for (const keyring of [...keyrings, await openFileKeyring(path)]) {
      expect(await createSealer(keyring).openText(record, 'aad')).toBe('shared');
    }
  });

  it('throws TypeError for an empty path', async () => {
    await expect(openFileKeyring('')).rejects.toThrow(TypeError);
  });
});

describe('openFileKeyring: refusing unsafe files', () => {
  it.runIf(posix)('refuses a 0644 file, telling the operator to chmod 600 it', async () => {
    await openFileKeyring(path);
    await chmod(path, 0o644);
    const error = await failure(openFileKeyring(path));
    expect(error.code).toBe('ERR_KEK_FILE_PERMISSIONS');
    expect(error.message).toContain(`chmod 600 ${path}`);
  });

  it.runIf(posix)('refuses group-readable (0640) too, and accepts read-only 0400', async () => {
    await openFileKeyring(path);
    await chmod(path, 0o640);
    expect((await failure(openFileKeyring(path))).code).toBe('ERR_KEK_FILE_PERMISSIONS');
    await chmod(path, 0o400);
    await expect(openFileKeyring(path)).resolves.toBeDefined();
  });

  const validKey = Buffer.alloc(32, 7).toString('base64');
  const entry = { version: 1, key: validKey, createdAt: '2026-01-01T00:00:00Z' };
  const corruptFiles: Record<string, string> = {
    empty: '',
    'truncated JSON': `{"format":"${KEK_FILE_FORMAT}","keys":[{"version":1,"key":"${validKey}`,
    'not an object': '[]',
    'wrong format': JSON.stringify({ format: 'soglasie-kek/9', keys: [entry] }),
    'no keys': JSON.stringify({ format: KEK_FILE_FORMAT, keys: [] }),
    'short key': JSON.stringify({
      format: KEK_FILE_FORMAT,
      keys: [{ ...entry, key: Buffer.alloc(16).toString('base64') }],
    }),
    'key not base64': JSON.stringify({ format: KEK_FILE_FORMAT, keys: [{ ...entry, key: '%%%' }] }),
    'bad version': JSON.stringify({ format: KEK_FILE_FORMAT, keys: [{ ...entry, version: 1.5 }] }),
    'duplicate version': JSON.stringify({ format: KEK_FILE_FORMAT, keys: [entry, entry] }),
    'bad createdAt': JSON.stringify({
      format: KEK_FILE_FORMAT,
      keys: [{ ...entry, createdAt: 'yesterday' }],
    }),
  };

  for (const [name, content] of Object.entries(corruptFiles)) {
    it(`refuses a corrupt file (${name}) and does not touch it`, async () => {
      await writeFile(path, content, { mode: 0o600 });
      const before = await stat(path);
      const error = await failure(openFileKeyring(path));
      expect(error.code).toBe('ERR_KEK_FILE_CORRUPT');
      expect(error.message).toContain(path);
      expect(error.message).toMatch(/do not delete/i);
      // Key bytes must never reach logs through the error message.
      expect(error.message).not.toContain(validKey.slice(0, 12));
      expect(await readFile(path, 'utf8')).toBe(content);
      expect((await stat(path)).mtimeMs).toBe(before.mtimeMs);
      const rotation = await failure(addKeyVersion(path));
      expect(rotation.code).toBe('ERR_KEK_FILE_CORRUPT');
      expect(await readFile(path, 'utf8')).toBe(content);
    });
  }

  it('refuses a directory where the file should be', async () => {
    const error = await failure(openFileKeyring(dir));
    expect(error.code).toBe('ERR_KEK_FILE_CORRUPT');
  });
});

describe('addKeyVersion', () => {
  it('new records use v2, records sealed under v1 still open', async () => {
    const v1Sealer = createSealer(await openFileKeyring(path));
    const old = await v1Sealer.seal({ passport: '4510 123456' }, 'citizens/1');
    expect(old.kek).toBe(1);

    expect(await addKeyVersion(path)).toBe(2);

    const rotated = createSealer(await openFileKeyring(path));
    const fresh = await rotated.seal('new', 'citizens/2');
    expect(fresh.kek).toBe(2);
    expect(await rotated.openJson(old, 'citizens/1')).toEqual({ passport: '4510 123456' });
    expect(await rotated.openText(fresh, 'citizens/2')).toBe('new');
  });

  it.runIf(posix)('keeps the file 0600 and the existing key unchanged', async () => {
    await openFileKeyring(path);
    const [first] = JSON.parse(await readFile(path, 'utf8')).keys;
    await addKeyVersion(path, { clock: manualClock('2027-03-01T00:00:00Z') });
    await addKeyVersion(path);
    const doc = JSON.parse(await readFile(path, 'utf8'));
    expect(doc.keys.map((k: { version: number }) => k.version)).toEqual([1, 2, 3]);
    expect(doc.keys[0]).toEqual(first);
    expect(doc.keys[1].createdAt).toBe('2027-03-01T00:00:00.000Z');
    expect(new Set(doc.keys.map((k: { key: string }) => k.key)).size).toBe(3);
    expect(await mode(path)).toBe(0o600);
  });

  it('an already-open keyring keeps wrapping with the version it loaded', async () => {
    const open = await openFileKeyring(path);
    await addKeyVersion(path);
    expect(open.currentVersion).toBe(1);
    expect((await openFileKeyring(path)).currentVersion).toBe(2);
  });

  it('refuses to run while another rotation holds the lock, changing nothing', async () => {
    await openFileKeyring(path);
    const content = await readFile(path, 'utf8');
    await writeFile(`${path}.lock`, '12345\n');
    const error = await failure(addKeyVersion(path));
    expect(error.code).toBe('ERR_KEK_FILE_LOCKED');
    expect(error.message).toContain(`${path}.lock`);
    expect(await readFile(path, 'utf8')).toBe(content);
    expect(await readFile(`${path}.lock`, 'utf8')).toBe('12345\n');
  });

  it('fails on a missing file instead of silently creating one', async () => {
    await expect(addKeyVersion(path)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(dir)).toEqual([]);
  });

  it.runIf(posix)('refuses to rotate a file others can read', async () => {
    await openFileKeyring(path);
    await chmod(path, 0o644);
    expect((await failure(addKeyVersion(path))).code).toBe('ERR_KEK_FILE_PERMISSIONS');
  });
});
