import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { decodeBase64Strict, encodeBase64 } from './base64.js';
import { CryptoError } from './errors.js';
import {
  KEY_LENGTH,
  generateKey,
  isKeyVersion,
  keyringFromKeys,
  type KeyEncryptionKeyring,
} from './key-encryption-key.js';

/*
 * Losing this file means losing every record encrypted under it, and a stray
 * reader of it can decrypt a database dump. Hence: never written in place,
 * never created over an existing file, refused if others can read it, and
 * never "repaired" automatically.
 */

export const KEK_FILE_FORMAT = 'soglasie-kek/1';

export interface KekFileOptions {
  /** Stamps `createdAt` on new key versions. */
  clock?: Clock;
}

interface KeyEntry {
  version: number;
  key: Buffer;
  createdAt: string;
}

function requirePath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path === '') {
    throw new TypeError('KEK file path must be a non-empty string');
  }
}

function corrupt(path: string, reason: string): CryptoError {
  return new CryptoError(
    'ERR_KEK_FILE_CORRUPT',
    `KEK file ${path} is unusable: ${reason}. ` +
      'Do not delete or replace it if any data was encrypted with it: that data ' +
      'would become unreadable for good. Restore the file from backup instead.',
  );
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

function parseKekFile(path: string, text: string): KeyEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // The parser's message quotes the input, which would put key bytes in logs.
    throw corrupt(path, 'not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw corrupt(path, 'not a JSON object');
  }
  const { format, keys } = doc as Record<string, unknown>;
  if (format !== KEK_FILE_FORMAT) {
    throw corrupt(path, `"format" is not "${KEK_FILE_FORMAT}"`);
  }
  if (!Array.isArray(keys) || keys.length === 0) {
    throw corrupt(path, '"keys" is not a non-empty array');
  }
  const seen = new Set<number>();
  return keys.map((entry: unknown, index): KeyEntry => {
    const { version, key, createdAt } = (entry ?? {}) as Record<string, unknown>;
    if (!isKeyVersion(version))
      throw corrupt(path, `keys[${index}].version is not an integer >= 1`);
    if (seen.has(version)) throw corrupt(path, `key version ${version} appears twice`);
    seen.add(version);
    const bytes = decodeBase64Strict(key);
    if (bytes === undefined || bytes.length !== KEY_LENGTH) {
      throw corrupt(path, `key version ${version} is not ${KEY_LENGTH} bytes of base64`);
    }
    if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) {
      throw corrupt(path, `key version ${version} has no valid createdAt`);
    }
    return { version, key: bytes, createdAt };
  });
}

function serializeKekFile(entries: readonly KeyEntry[]): string {
  const keys = entries.map(({ version, key, createdAt }) => ({
    version,
    key: encodeBase64(key),
    createdAt,
  }));
  return `${JSON.stringify({ format: KEK_FILE_FORMAT, keys }, null, 2)}\n`;
}

/** Returns undefined when the file does not exist; any other problem throws. */
async function readKekFile(path: string): Promise<KeyEntry[] | undefined> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    // fstat on the open handle, so the file checked is the file read.
    const stats = await handle.stat();
    if (!stats.isFile()) throw corrupt(path, 'not a regular file');
    // Windows has no POSIX modes; its ACLs are the operator's concern there.
    if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw new CryptoError(
        'ERR_KEK_FILE_PERMISSIONS',
        `KEK file ${path} has mode ${mode}, so users other than its owner can access it; ` +
          `run: chmod 600 ${path}`,
      );
    }
    return parseKekFile(path, await handle.readFile('utf8'));
  } finally {
    await handle.close();
  }
}

/** Makes a rename or link durable across power loss; best effort off Linux. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a directory; the data file itself is synced.
  } finally {
    await handle?.close();
  }
}

/**
 * Writes the full content to a 0600 temp file in the target directory and
 * fsyncs it, so the real path only ever appears complete.
 */
async function writeTempFile(path: string, content: string): Promise<string> {
  const temp = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => {});
    throw error;
  }
  await handle.close();
  return temp;
}

/**
 * Publishes a first-version file without ever replacing one. link() fails if
 * the path exists, where rename() would silently replace a file that another
 * process created a moment ago and may already be encrypting with.
 */
async function createKekFile(path: string, clock: Clock): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const entries = [{ version: 1, key: generateKey(), createdAt: clock.now().toISOString() }];
  const temp = await writeTempFile(path, serializeKekFile(entries));
  try {
    await link(temp, path);
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    // Lost a race with another process: its file is the one to use.
  } finally {
    await unlink(temp).catch(() => {});
  }
  await syncDirectory(dirname(path));
}

/**
 * Opens the KEK file at `path`, creating it with one fresh key (mode 0600,
 * parent directory 0700) if it does not exist. Refuses a file others can
 * access (ERR_KEK_FILE_PERMISSIONS) or one that does not parse
 * (ERR_KEK_FILE_CORRUPT), and never modifies an existing file.
 *
 * The keyring is a snapshot: after `addKeyVersion`, running processes keep
 * wrapping with the old version until they reopen the file. Services use
 * openLiveFileKeyring, which follows the file.
 */
export async function openFileKeyring(
  path: string,
  options: KekFileOptions = {},
): Promise<KeyEncryptionKeyring> {
  requirePath(path);
  let entries = await readKekFile(path);
  if (entries === undefined) {
    await createKekFile(path, options.clock ?? systemClock);
    // Read back rather than trust memory: proves the file on disk is usable.
    entries = await readKekFile(path);
    if (entries === undefined) throw corrupt(path, 'it vanished right after being created');
  }
  return keyringFromKeys(entries);
}

/**
 * Runs `fn` holding `<path>.lock`, created exclusively. It guards against two
 * concurrent rotations each writing its own "version n+1", which would lose
 * whichever key was written first.
 */
async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  let lock;
  try {
    lock = await open(lockPath, 'wx', 0o600);
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    throw new CryptoError(
      'ERR_KEK_FILE_LOCKED',
      `another key rotation of ${path} seems to be running (lock file ${lockPath} exists); ` +
        'if none is, remove the lock file and retry',
    );
  }
  try {
    await lock.writeFile(`${process.pid}\n`);
    return await fn();
  } finally {
    await lock.close();
    await unlink(lockPath).catch(() => {});
  }
}

async function readExisting(path: string, what: string): Promise<KeyEntry[]> {
  const entries = await readKekFile(path);
  if (entries === undefined) {
    // Creating a fresh file here would hide a mistyped path from the operator.
    throw Object.assign(new Error(`KEK file ${path} does not exist; nothing to ${what}`), {
      code: 'ENOENT',
    });
  }
  return entries;
}

/** Replaces the file with `entries` (temp file, fsync, rename, fsync the directory). */
async function replaceKekFile(path: string, entries: readonly KeyEntry[]): Promise<void> {
  const temp = await writeTempFile(path, serializeKekFile(entries));
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
  await syncDirectory(dirname(path));
}

/**
 * Appends a new key version (highest version + 1), which becomes current for
 * keyrings opened afterwards (and for live keyrings at their next check). Old
 * versions stay so that existing data still opens. Returns the new version.
 */
export async function addKeyVersion(path: string, options: KekFileOptions = {}): Promise<number> {
  requirePath(path);
  return withLock(path, async () => {
    const entries = await readExisting(path, 'rotate');
    const version = Math.max(...entries.map((entry) => entry.version)) + 1;
    const clock = options.clock ?? systemClock;
    entries.push({ version, key: generateKey(), createdAt: clock.now().toISOString() });
    await replaceKekFile(path, entries);
    return version;
  });
}

/** The versions in the file and when each was made; no key material. */
export async function listKeyVersions(
  path: string,
): Promise<{ version: number; createdAt: string; current: boolean }[]> {
  requirePath(path);
  const entries = await readExisting(path, 'list');
  const current = Math.max(...entries.map((entry) => entry.version));
  return entries.map(({ version, createdAt }) => ({
    version,
    createdAt,
    current: version === current,
  }));
}

/**
 * Removes old key versions from the file for good. The caller must have made sure
 * that nothing stored is wrapped by them any more (see platform/keys): data wrapped
 * by a removed version can never be opened again. The current (highest) version is
 * never removed. Returns the versions actually removed.
 */
export async function removeKeyVersions(
  path: string,
  versions: readonly number[],
): Promise<number[]> {
  requirePath(path);
  return withLock(path, async () => {
    const entries = await readExisting(path, 'retire');
    const current = Math.max(...entries.map((entry) => entry.version));
    if (versions.includes(current)) {
      throw new TypeError(`key version ${current} is the current one and cannot be retired`);
    }
    const kept = entries.filter((entry) => !versions.includes(entry.version));
    const removed = entries.filter((entry) => versions.includes(entry.version));
    if (removed.length > 0) await replaceKekFile(path, kept);
    return removed.map((entry) => entry.version);
  });
}

export interface LiveKeyringOptions extends KekFileOptions {
  /**
   * How often (at most) a wrap checks whether the file changed, in ms; default 5 s.
   * An unwrap that meets an unknown version re-reads the file at once (at most once a
   * second), so data re-wrapped by another process under a new version always opens.
   */
  recheckMs?: number;
  /** Told when re-reading the file fails; the keyring then keeps its last good keys. */
  onReloadError?: (error: unknown) => void;
}

/** A file keyring that follows the file: see openLiveFileKeyring. */
export interface LiveKeyring extends KeyEncryptionKeyring {
  /** The versions it holds now. */
  readonly versions: readonly number[];
  /** Re-reads the file now (e.g. after addKeyVersion in the same process). */
  reload(): Promise<void>;
}

export const LIVE_KEYRING_RECHECK_MS = 5_000;
const UNKNOWN_VERSION_RELOAD_MS = 1_000;

/**
 * Like openFileKeyring, but keeps following the file, so that a running service takes
 * part in a KEK rotation done by another process (`soglasie keys rotate`):
 * - an unwrap naming a version it lacks re-reads the file and tries again, so reads
 *   never fail while data is being re-wrapped under the new version;
 * - wraps notice a new version within `recheckMs` and use it from then on.
 * A version removed from the file is dropped at the next re-read. Reading errors keep
 * the last good keys (they are reported to `onReloadError`).
 */
export async function openLiveFileKeyring(
  path: string,
  options: LiveKeyringOptions = {},
): Promise<LiveKeyring> {
  requirePath(path);
  await openFileKeyring(path, options); // creates the file on first use
  const recheckMs = options.recheckMs ?? LIVE_KEYRING_RECHECK_MS;
  let entries = await readExisting(path, 'open');
  let keyring = keyringFromKeys(entries);
  let identity = await fileIdentity(path);
  let checkedAt = Date.now();
  let unknownReloadAt = 0;
  let reloading: Promise<void> | undefined;

  const load = async () => {
    const fresh = await readExisting(path, 'open');
    const freshIdentity = await fileIdentity(path);
    keyring = keyringFromKeys(fresh);
    entries = fresh;
    identity = freshIdentity;
  };
  const reload = () =>
    (reloading ??= load().finally(() => {
      reloading = undefined;
    }));

  async function checkForChange(): Promise<void> {
    if (Date.now() - checkedAt < recheckMs) return;
    checkedAt = Date.now();
    try {
      if ((await fileIdentity(path)) !== identity) await reload();
    } catch (error) {
      options.onReloadError?.(error);
    }
  }

  return Object.freeze({
    get currentVersion() {
      return keyring.currentVersion;
    },
    get versions() {
      return entries.map((entry) => entry.version);
    },
    reload,
    async wrap(dataKey: Buffer) {
      await checkForChange();
      return keyring.wrap(dataKey);
    },
    async unwrap(version: number, wrapped: Buffer) {
      const known = () => entries.some((entry) => entry.version === version);
      // A version not seen yet: re-read the file (someone may be re-wrapping under it).
      // Rate-limited, so a forged version number cannot make every read hit the disk;
      // a read that comes within the limit waits for the next re-read instead of failing.
      for (let attempt = 0; attempt < 2 && !known(); attempt++) {
        if (reloading) {
          await reloading.catch(() => {});
          continue;
        }
        const wait = unknownReloadAt + UNKNOWN_VERSION_RELOAD_MS - Date.now();
        if (wait > 0) {
          await new Promise((resolve) => setTimeout(resolve, wait));
          if (known() || reloading) continue;
        }
        unknownReloadAt = Date.now();
        await reload().catch((error: unknown) => options.onReloadError?.(error));
      }
      // Throws ERR_KEK_UNKNOWN_VERSION if the file does not have it either.
      return keyring.unwrap(version, wrapped);
    },
  });
}

/** Changes whenever the file is replaced (rename gives a new inode) or rewritten. */
async function fileIdentity(path: string): Promise<string> {
  const stats = await stat(path);
  return `${stats.ino}:${stats.size}:${stats.mtimeMs}`;
}
