import type { Kysely } from 'kysely';
import { encodeBase64 } from '../crypto/base64.js';
import {
  LIVE_KEYRING_RECHECK_MS,
  addKeyVersion,
  listKeyVersions,
  openFileKeyring,
  removeKeyVersions,
  type KeyEncryptionKeyring,
} from '../crypto/index.js';
import { isKeyVersion } from '../crypto/key-encryption-key.js';
import { decodeWrappedKey } from '../crypto/sealed-format.js';
import { inTransaction } from '../db/index.js';
import { createSealedValueStore, type CandidateColumn } from './sealed-values.store.js';

/*
 * KEK rotation (docs/keys.md): add a KEK version, make it current, and re-wrap every
 * stored data key under it. Only the small wrapped data keys change (`kek`, `dk`); the
 * ciphertext, its IV and tag, and the row it is bound to stay as they are, so a reader
 * sees either the old wrapping or the new one, and both open: the old version stays in
 * the keyring until nothing uses it, and running services re-read the KEK file when they
 * meet a version they lack (openLiveFileKeyring).
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any service's database
type AnyDb = Kysely<any>;

export interface WrappedKeyRef {
  kek: number;
  dk: string;
}

function isWrappedKey(value: unknown): value is WrappedKeyRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const { kek, dk } = value as Record<string, unknown>;
  if (!isKeyVersion(kek) || typeof dk !== 'string' || dk === '') return false;
  try {
    decodeWrappedKey(value);
    return true;
  } catch {
    return false;
  }
}

function parseJsonObject(text: string): unknown {
  const trimmed = text.trimStart();
  if (!trimmed.startsWith('{') && !trimmed.startsWith('[')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Walks a JSON value (and JSON text nested in its strings) and replaces each wrapped key
 * for which `fn` returns a new one. Key order and every other field are kept.
 */
async function transform(
  value: unknown,
  fn: (key: WrappedKeyRef) => Promise<WrappedKeyRef | undefined>,
): Promise<{ value: unknown; changed: boolean }> {
  if (typeof value === 'string') {
    const nested = parseJsonObject(value);
    if (nested === undefined) return { value, changed: false };
    const inner = await transform(nested, fn);
    return inner.changed
      ? { value: JSON.stringify(inner.value), changed: true }
      : { value, changed: false };
  }
  if (Array.isArray(value)) {
    let changed = false;
    const out: unknown[] = [];
    for (const item of value) {
      const r = await transform(item, fn);
      changed ||= r.changed;
      out.push(r.value);
    }
    return { value: changed ? out : value, changed };
  }
  if (typeof value === 'object' && value !== null) {
    if (isWrappedKey(value)) {
      const replacement = await fn(value);
      return replacement
        ? { value: { ...value, kek: replacement.kek, dk: replacement.dk }, changed: true }
        : { value, changed: false };
    }
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = await transform(v, fn);
      changed ||= r.changed;
      out[k] = r.value;
    }
    return { value: changed ? out : value, changed };
  }
  return { value, changed: false };
}

/** The KEK versions of the wrapped keys in one stored value (text of a column). */
export async function wrappedKeyVersions(text: string): Promise<number[]> {
  const versions: number[] = [];
  const parsed = parseJsonObject(text);
  if (parsed === undefined) return versions;
  await transform(parsed, async (key) => {
    versions.push(key.kek);
    return undefined;
  });
  return versions;
}

/**
 * The same value with every data key not wrapped by the keyring's current version
 * re-wrapped by it; undefined when nothing needed it. Throws (CryptoError) when a key
 * cannot be unwrapped.
 */
export async function rewrapValue(
  text: string,
  keyring: KeyEncryptionKeyring,
): Promise<string | undefined> {
  const parsed = parseJsonObject(text);
  if (parsed === undefined) return undefined;
  const result = await transform(parsed, async (key) => {
    if (key.kek === keyring.currentVersion) return undefined;
    return rewrapKey(keyring, key);
  });
  return result.changed ? JSON.stringify(result.value) : undefined;
}

async function rewrapKey(
  keyring: KeyEncryptionKeyring,
  key: { kek: number; dk: string },
): Promise<WrappedKeyRef> {
  const { kek, dk } = decodeWrappedKey(key);
  const dataKey = await keyring.unwrap(kek, dk);
  try {
    const { version, wrapped } = await keyring.wrap(dataKey);
    return { kek: version, dk: encodeBase64(wrapped) };
  } finally {
    dataKey.fill(0);
  }
}

export interface RewrapProgress {
  /** Rows looked at so far, of `total` candidate rows counted before the pass. */
  done: number;
  total: number;
  rewrapped: number;
  table: string;
}

export interface RewrapFailure {
  table: string;
  column: string;
  /** The row's physical address at the time (ctid), or the service key's name. */
  row: string;
  reason: string;
}

export interface RewrapReport {
  /** Candidate rows looked at (a rewritten row may be met twice). */
  scanned: number;
  /** Column values re-wrapped (a value may hold several data keys). */
  rewrapped: number;
  /** Rows changed by someone else between read and update; the next pass takes them. */
  conflicts: number;
  failures: RewrapFailure[];
}

export interface RewrapOptions {
  db: AnyDb;
  /** Must hold every version in use; its current version is the target. */
  keyring: KeyEncryptionKeyring;
  /** Updates per transaction (default 500). */
  batchSize?: number;
  /** Heap pages read per query (default 256, 2 MB with 8 kB pages). */
  windowPages?: number;
  onProgress?: (progress: RewrapProgress) => void;
  /** Runs after each committed batch (tests read through the service here). */
  afterBatch?: () => Promise<void>;
}

/** Re-wraps every data key in the database under the keyring's current KEK version. */
export async function rewrapAll(opts: RewrapOptions): Promise<RewrapReport> {
  const store = createSealedValueStore(opts.db);
  const batchSize = Math.max(1, opts.batchSize ?? 500);
  const windowPages = Math.max(1, opts.windowPages ?? 256);
  const tables = groupByTable(await store.candidateColumns());
  const report: RewrapReport = { scanned: 0, rewrapped: 0, conflicts: 0, failures: [] };

  let total = 0;
  for (const [table, columns] of tables) {
    total += await store.countCandidates(
      table,
      columns.map((c) => c.column),
    );
  }
  const serviceKeys = tables.has('service_keys') ? await store.serviceKeys() : [];
  total += serviceKeys.length;
  // Rewritten rows move further into the table and are met again (with nothing left to
  // do), so rows looked at can exceed the count made before: progress stops at the total.
  const progress = (table: string) =>
    opts.onProgress?.({
      done: Math.min(report.scanned, total),
      total,
      rewrapped: report.rewrapped,
      table,
    });
  progress('');

  // service_keys: version and wrapped key in their own columns.
  for (const row of serviceKeys) {
    report.scanned++;
    if (row.kek_version === opts.keyring.currentVersion) continue;
    try {
      const next = await rewrapKey(opts.keyring, { kek: row.kek_version, dk: row.wrapped });
      const ok = await store.replaceServiceKey(opts.db, row, {
        name: row.name,
        kek_version: next.kek,
        wrapped: next.dk,
      });
      if (ok) report.rewrapped++;
      else report.conflicts++;
    } catch (err) {
      report.failures.push({
        table: 'service_keys',
        column: 'wrapped',
        row: row.name,
        reason: describe(err),
      });
    }
  }
  if (serviceKeys.length > 0) {
    progress('service_keys');
    await opts.afterBatch?.();
  }

  for (const [table, columns] of tables) {
    const names = columns.map((c) => c.column);
    for (let from = 0; from < (await store.pages(table)); from += windowPages) {
      const rows = await store.window(table, names, from, from + windowPages);
      const updates: {
        ctid: string;
        changes: { at: CandidateColumn; oldText: string; newText: string }[];
      }[] = [];
      for (const row of rows) {
        const changes: { at: CandidateColumn; oldText: string; newText: string }[] = [];
        for (const at of columns) {
          const text = row.values[at.column];
          if (text == null) continue;
          try {
            const next = await rewrapValue(text, opts.keyring);
            if (next !== undefined) changes.push({ at, oldText: text, newText: next });
          } catch (err) {
            report.failures.push({
              table,
              column: at.column,
              row: row.ctid,
              reason: describe(err),
            });
          }
        }
        if (changes.length > 0) updates.push({ ctid: row.ctid, changes });
      }
      // Progress counts rows: a window's rows are done as its batches commit.
      const before = report.scanned;
      for (let i = 0; i < updates.length; i += batchSize) {
        const batch = updates.slice(i, i + batchSize);
        await inTransaction(opts.db, async (trx) => {
          for (const u of batch) {
            if (await store.replace(trx, table, u.ctid, u.changes)) {
              report.rewrapped += u.changes.length;
            } else {
              report.conflicts++;
            }
          }
        });
        report.scanned = before + Math.floor((rows.length * (i + batch.length)) / updates.length);
        progress(table);
        await opts.afterBatch?.();
      }
      report.scanned = before + rows.length;
      if (rows.length > 0 && updates.length === 0) progress(table);
    }
  }
  return report;
}

export interface KekUse {
  table: string;
  column: string;
  version: number;
  count: number;
}

/** How many stored data keys each KEK version wraps, and where. */
export async function countKekUses(db: AnyDb): Promise<{
  byVersion: Map<number, number>;
  uses: KekUse[];
}> {
  const store = createSealedValueStore(db);
  const counts = new Map<string, KekUse>();
  const add = (table: string, column: string, version: number) => {
    const key = `${table}\0${column}\0${version}`;
    const use = counts.get(key) ?? { table, column, version, count: 0 };
    use.count++;
    counts.set(key, use);
  };
  const tables = groupByTable(await store.candidateColumns());
  if (tables.has('service_keys')) {
    for (const row of await store.serviceKeys()) add('service_keys', 'wrapped', row.kek_version);
  }
  for (const [table, columns] of tables) {
    const names = columns.map((c) => c.column);
    for (let from = 0; from < (await store.pages(table)); from += 256) {
      for (const row of await store.window(table, names, from, from + 256)) {
        for (const column of names) {
          const text = row.values[column];
          if (text == null) continue;
          for (const version of await wrappedKeyVersions(text)) add(table, column, version);
        }
      }
    }
  }
  const uses = [...counts.values()].sort(
    (a, b) => a.table.localeCompare(b.table) || a.column.localeCompare(b.column),
  );
  const byVersion = new Map<number, number>();
  for (const u of uses) byVersion.set(u.version, (byVersion.get(u.version) ?? 0) + u.count);
  return { byVersion, uses };
}

export interface KekRotationOptions {
  kekPath: string;
  db: AnyDb;
  /**
   * Services may be running on this database (PostgreSQL): wait until they have
   * noticed the new version (they re-read the KEK file within LIVE_KEYRING_RECHECK_MS)
   * and make a second pass for the values they wrapped under the old one meanwhile.
   */
  servicesMayRun: boolean;
  /** Remove the versions nothing uses any more from the KEK file at the end. */
  retireOld?: boolean;
  batchSize?: number;
  onProgress?: (progress: RewrapProgress & { pass: 1 | 2 }) => void;
  afterBatch?: () => Promise<void>;
  /** How long running services may take to notice the new version (tests shorten it). */
  settleMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

export interface KekRotationResult {
  version: number;
  passes: RewrapReport[];
  /** Versions still in use afterwards (should be only the new one). */
  inUse: Map<number, number>;
  retired: number[];
  /** Old versions kept because something still uses them. */
  kept: number[];
}

/** `soglasie keys rotate --kek`: new version, re-wrap everything, optionally retire. */
export async function rotateKek(opts: KekRotationOptions): Promise<KekRotationResult> {
  const started = Date.now();
  const version = await addKeyVersion(opts.kekPath);
  const keyring = await openFileKeyring(opts.kekPath);
  const pass = (n: 1 | 2) =>
    rewrapAll({
      db: opts.db,
      keyring,
      batchSize: opts.batchSize,
      onProgress: (p) => opts.onProgress?.({ ...p, pass: n }),
      afterBatch: opts.afterBatch,
    });
  const passes = [await pass(1)];
  if (opts.servicesMayRun) {
    const settle = opts.settleMs ?? 2 * LIVE_KEYRING_RECHECK_MS + 1_000;
    const wait = started + settle - Date.now();
    if (wait > 0) await (opts.sleep ?? defaultSleep)(wait);
    passes.push(await pass(2));
  }
  const { retired, kept, inUse } = opts.retireOld
    ? await retireUnusedKeks(opts.kekPath, opts.db)
    : { retired: [], ...(await unused(opts.kekPath, opts.db)) };
  return { version, passes, inUse, retired, kept };
}

async function unused(kekPath: string, db: AnyDb) {
  const { byVersion } = await countKekUses(db);
  const versions = await listKeyVersions(kekPath);
  const kept = versions.filter((v) => !v.current && byVersion.has(v.version)).map((v) => v.version);
  const removable = versions
    .filter((v) => !v.current && !byVersion.has(v.version))
    .map((v) => v.version);
  return { inUse: byVersion, kept, removable };
}

/**
 * Removes from the KEK file the old versions that no stored value uses (a fresh scan
 * decides, just before). The current version always stays.
 */
export async function retireUnusedKeks(
  kekPath: string,
  db: AnyDb,
): Promise<{ retired: number[]; kept: number[]; inUse: Map<number, number> }> {
  const { inUse, kept, removable } = await unused(kekPath, db);
  const retired = removable.length > 0 ? await removeKeyVersions(kekPath, removable) : [];
  return { retired, kept, inUse };
}

function groupByTable(columns: CandidateColumn[]): Map<string, CandidateColumn[]> {
  const tables = new Map<string, CandidateColumn[]>();
  for (const c of columns) tables.set(c.table, [...(tables.get(c.table) ?? []), c]);
  return tables;
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
