import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatabaseError } from './errors.js';

/**
 * Checks and locks a PGlite data directory before PGlite touches it.
 *
 * PGlite itself does not lock its data directory: two processes (or two instances in one
 * process) opening the same directory would each run their own PostgreSQL on the same
 * files and corrupt them. So we keep a lock file inside it, holding our pid. A lock whose
 * process is gone (crash, kill -9) is stale and taken over.
 */

export const LOCK_FILE_NAME = 'soglasie.lock';

/** Entries a fresh, empty directory may contain (a mounted volume has lost+found). */
const IGNORABLE_ENTRIES = new Set([LOCK_FILE_NAME, 'lost+found', '.DS_Store']);

export interface DataDirLock {
  readonly dataDir: string;
  release(): void;
}

interface LockContent {
  pid: number;
  /** The process start time from /proc (Linux), to recognise a reused pid. */
  started?: string | undefined;
  hostname: string;
  since: string;
}

/** Lock files this process holds, by absolute path: released at exit even without close(). */
const heldLocks = new Map<string, string>();
let exitHookInstalled = false;

/**
 * Makes sure `dataDir` is a usable PGlite data directory (creating it if missing) and
 * locks it for this process. Throws DatabaseError ERR_DB_DATA_DIR, saying what to do.
 */
export function prepareDataDir(dataDir: string, name: string): DataDirLock {
  const dir = path.resolve(dataDir);
  const fail = (problem: string, remedy: string, cause?: unknown): never => {
    throw new DatabaseError(
      'ERR_DB_DATA_DIR',
      `The ${name} database directory ${dir} ${problem}. ${remedy}`,
      {
        cause,
      },
    );
  };

  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT')
      fail(`cannot be read (${describeErrno(err)})`, CHECK_PERMISSIONS, err);
  }
  if (stat && !stat.isDirectory()) {
    fail(
      'is a file, not a directory',
      'Move that file away, or choose another data directory (SOGLASIE_DATA_DIR).',
    );
  }
  if (!stat) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      fail(`cannot be created (${describeErrno(err)})`, CHECK_PERMISSIONS, err);
    }
  }
  try {
    fs.accessSync(dir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    fail(`is not writable by this process (${describeErrno(err)})`, CHECK_PERMISSIONS, err);
  }

  const lock = acquireLock(dir, name);
  try {
    const entries = fs.readdirSync(dir).filter((e) => !IGNORABLE_ENTRIES.has(e));
    if (entries.length > 0 && !entries.includes('PG_VERSION')) {
      fail(
        'is not empty and does not hold a PGlite database (no PG_VERSION file)',
        'Refusing to create a database among unrelated files: choose an empty or new directory.',
      );
    }
  } catch (err) {
    lock.release();
    throw err;
  }
  return lock;
}

/** The PostgreSQL major version recorded in a data directory, if there is one. */
export function dataDirPgVersion(dataDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dataDir, 'PG_VERSION'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

const CHECK_PERMISSIONS =
  'Check that it (or its parent) exists and is writable by this user, or choose another data directory (SOGLASIE_DATA_DIR).';

function acquireLock(dir: string, name: string): DataDirLock {
  const lockPath = path.join(dir, LOCK_FILE_NAME);
  const inUse = (holder: LockContent, where: string): never => {
    throw new DatabaseError(
      'ERR_DB_DATA_DIR',
      `The ${name} database directory ${dir} is in use by ${where} (pid ${holder.pid} on ${holder.hostname}, since ${holder.since}). ` +
        'PGlite allows one process per data directory: stop the other process, or use PostgreSQL to run several. ' +
        `If you are sure no such process runs, delete ${lockPath}.`,
    );
  };

  const mine: LockContent = {
    pid: process.pid,
    started: processStartTime(process.pid),
    hostname: os.hostname(),
    since: new Date().toISOString(),
  };
  const text = JSON.stringify(mine);

  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreateExclusive(lockPath, text)) {
      heldLocks.set(lockPath, text);
      installExitHook();
      return {
        dataDir: dir,
        release: () => releaseLock(lockPath, text),
      };
    }
    const existingText = readOrUndefined(lockPath);
    if (existingText === undefined) continue; // released meanwhile; try again
    const holder = parseLock(existingText);
    if (holder) {
      if (heldLocks.has(lockPath)) inUse(holder, 'this same process (opened twice)');
      if (isAlive(holder)) inUse(holder, 'another process');
    }
    // Stale: move it aside under a private name, and make sure we moved the one we judged.
    const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      fs.renameSync(lockPath, aside);
    } catch {
      continue; // someone else took it over first; look again
    }
    const moved = readOrUndefined(aside);
    if (moved !== existingText) {
      // We raced another process and moved its fresh lock: put it back and report it.
      try {
        fs.linkSync(aside, lockPath);
      } catch {
        // the other process re-created it already
      }
      fs.rmSync(aside, { force: true });
      const other = moved === undefined ? undefined : parseLock(moved);
      if (other) inUse(other, 'another process');
      continue;
    }
    fs.rmSync(aside, { force: true });
  }
  throw new DatabaseError(
    'ERR_DB_DATA_DIR',
    `Could not lock the ${name} database directory ${dir}: the lock file ${lockPath} keeps changing. Is another process starting on it?`,
  );
}

/** Writes `text` to `lockPath` only if it does not exist: atomically, content included. */
function tryCreateExclusive(lockPath: string, text: string): boolean {
  const tmp = `${lockPath}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  try {
    fs.linkSync(tmp, lockPath);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false;
    throw new DatabaseError(
      'ERR_DB_DATA_DIR',
      `Could not create the lock file ${lockPath} (${describeErrno(err)}).`,
      {
        cause: err,
      },
    );
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function releaseLock(lockPath: string, text: string): void {
  if (heldLocks.get(lockPath) !== text) return;
  heldLocks.delete(lockPath);
  // Only remove it if it is still ours.
  if (readOrUndefined(lockPath) === text) fs.rmSync(lockPath, { force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [lockPath, text] of heldLocks) {
      try {
        if (readOrUndefined(lockPath) === text) fs.rmSync(lockPath, { force: true });
      } catch {
        // best effort at exit
      }
    }
  });
}

function isAlive(holder: LockContent): boolean {
  // Like PostgreSQL's postmaster.pid, judge by pid (and start time) only: a container that
  // is re-created gets a new hostname, and its old lock must still count as stale.
  if (holder.pid === process.pid) {
    // Our own pid but not a lock we hold: left by an earlier process that had our pid
    // (common in containers, where the service often gets the same small pid).
    return false;
  }
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return false;
    // EPERM: it exists but belongs to someone else.
  }
  const started = processStartTime(holder.pid);
  if (started !== undefined && holder.started !== undefined && started !== holder.started) {
    return false; // the pid was reused by an unrelated process
  }
  return true;
}

/** Start time of a process in clock ticks since boot (Linux); undefined elsewhere. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function parseLock(text: string): LockContent | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockContent>;
    if (typeof value.pid === 'number' && typeof value.hostname === 'string') {
      return {
        pid: value.pid,
        started: value.started,
        hostname: value.hostname,
        since: String(value.since),
      };
    }
  } catch {
    // unreadable: treat as stale
  }
  return undefined;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function errnoCode(err: unknown): string | undefined {
  return err && typeof err === 'object' && 'code' in err
    ? String((err as { code: unknown }).code)
    : undefined;
}

function describeErrno(err: unknown): string {
  switch (errnoCode(err)) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOTDIR':
      return 'a parent of it is a file, not a directory';
    case 'ENOSPC':
      return 'no space left on the device';
    case 'ENOENT':
      return 'a parent directory does not exist';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}
