import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { inTransaction } from '../db/index.js';
import { leafFields, type AuditTables } from './audit-log.js';
import { AUDIT_LOG_ORIGIN, noteSignature, signCheckpoint, type NoteSigner } from './checkpoint.js';
import { encodeLeaf } from './leaf.js';
import {
  MemoryTree,
  consistencyRanges,
  inclusionRanges,
  rangeHash,
  rootHash,
  subtreesOf,
  type Range,
  type Subtree,
} from './merkle.js';

/**
 * The audit log's Merkle tree in the database: signed checkpoints, and inclusion and
 * consistency proofs computed without reading the whole log.
 *
 * Storage: every entry keeps its leaf hash (audit_log.leaf_hash); every complete subtree
 * of 2^TILE_LEVEL = 256 leaves or more is stored once in audit_tree_nodes (about n/128
 * rows for n leaves), written when a checkpoint is published. A proof for a tree of a
 * million leaves then reads at most two tiles of 256 leaf hashes and about twenty stored
 * nodes; complete subtrees never change, so they are also cached in memory.
 */
export const TILE_LEVEL = 8;
const TILE = 2 ** TILE_LEVEL;
/** Leaf hashes read per query when building nodes. */
const LEAF_PAGE = 64 * TILE;
/** Complete subtree hashes kept in memory (32 bytes each, plus the key). */
const CACHE_LIMIT = 100_000;

export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  time: Date;
  /** The signed note (checkpoint.ts). */
  note: string;
}

/** The JSON a citizen gets for one of their entries (docs/audit-log.md), base64 throughout. */
export interface EntryProof {
  leaf_index: number;
  /** The entry's canonical bytes (leaf.ts); leaf_hash = SHA-256(0x00 || leaf). */
  leaf: string;
  leaf_hash: string;
  tree_size: number;
  root_hash: string;
  /** The signed note of the checkpoint (checkpoint.ts). */
  checkpoint: string;
  /** Its signature line's value: base64(key id || Ed25519 signature). */
  checkpoint_signature: string;
  verifier_key: string;
  /** RFC 9162 §2.1.3.1 inclusion proof, leaf side first. */
  audit_path: string[];
}

export interface AuditTreeOptions {
  signer: NoteSigner;
  clock: Clock;
}

type Db = Kysely<AuditTables>;

const key = (level: number, index: number) => `${level}/${index}`;

export function createAuditTree(db: Db, opts: AuditTreeOptions) {
  if (opts.signer.name !== AUDIT_LOG_ORIGIN) throw new Error('the signer must be named as the log');
  const cache = new Map<string, Buffer>();
  const remember = (level: number, index: number, hash: Buffer) => {
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    // A copy: a MemoryTree hands out views of buffers far larger than one hash.
    cache.set(key(level, index), Buffer.from(hash));
  };

  /** Leaves committed: indexes are dense, so the largest one plus one. */
  async function committedSize(q: Db): Promise<number> {
    const { next } = await q
      .selectFrom('audit_log')
      .select(sql<string>`coalesce(max(leaf_index) + 1, 0)`.as('next'))
      .executeTakeFirstOrThrow();
    return Number(next);
  }

  async function leafHashes(q: Db, start: number, end: number): Promise<Buffer[]> {
    const rows = await q
      .selectFrom('audit_log')
      .select(['leaf_index', 'leaf_hash'])
      .where('leaf_index', '>=', String(start))
      .where('leaf_index', '<', String(end))
      .orderBy('leaf_index')
      .execute();
    if (rows.length !== end - start || rows.some((r, i) => Number(r.leaf_index) !== start + i)) {
      throw new Error(`audit log leaves ${start}…${end - 1} are not all there`);
    }
    return rows.map((r) => r.leaf_hash);
  }

  /** The root of leaves [start, end) (a complete subtree) from their leaf hashes. */
  function treeOf(hashes: Buffer[]): Buffer {
    const tree = new MemoryTree();
    for (const h of hashes) tree.append(h);
    return Buffer.from(tree.root());
  }

  /** Hashes of the given complete subtrees: memory, then stored nodes, then leaf hashes. */
  async function subtrees(q: Db, wanted: Subtree[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    const missing: Subtree[] = [];
    for (const s of wanted) {
      const hit = cache.get(key(s.level, s.index));
      if (hit) found.set(key(s.level, s.index), hit);
      else missing.push(s);
    }
    const stored = missing.filter((s) => s.level >= TILE_LEVEL);
    if (stored.length > 0) {
      const rows = await q
        .selectFrom('audit_tree_nodes')
        .select(['level', 'idx', 'hash'])
        .where(
          sql<boolean>`(level, idx) in (${sql.join(stored.map((s) => sql`(${s.level}::smallint, ${s.index}::bigint)`))})`,
        )
        .execute();
      for (const r of rows) {
        remember(r.level, Number(r.idx), r.hash);
        found.set(key(r.level, Number(r.idx)), r.hash);
      }
    }
    // Small subtrees, and large ones not stored yet (beyond the newest checkpoint): from
    // leaf hashes, one query per distinct range.
    for (const s of missing) {
      if (found.has(key(s.level, s.index))) continue;
      const width = 2 ** s.level;
      const hash = treeOf(await leafHashes(q, s.index * width, (s.index + 1) * width));
      remember(s.level, s.index, hash);
      found.set(key(s.level, s.index), hash);
    }
    return found;
  }

  /** Runs `fn` with the complete subtrees that the given ranges need, fetched in bulk. */
  async function withRanges<T>(
    q: Db,
    ranges: readonly Range[],
    fn: (get: (level: number, index: number) => Buffer | undefined) => T,
  ): Promise<T> {
    // Small subtrees of one tile come from one read of that tile's leaves.
    const wanted = subtreesOf(ranges);
    const found = new Map<string, Buffer>();
    const small = wanted.filter((s) => s.level < TILE_LEVEL && !cache.has(key(s.level, s.index)));
    const byTile = new Map<number, Subtree[]>();
    for (const s of small) {
      const tile = Math.floor((s.index * 2 ** s.level) / TILE);
      byTile.set(tile, [...(byTile.get(tile) ?? []), s]);
    }
    for (const [tile, list] of byTile) {
      // From the tile's first leaf, so its subtrees are subtrees of this small tree too.
      const from = tile * TILE;
      const end = Math.max(...list.map((s) => (s.index + 1) * 2 ** s.level));
      const tree = new MemoryTree();
      for (const h of await leafHashes(q, from, end)) tree.append(h);
      for (const s of list) {
        const hash = tree.subtree(s.level, s.index - from / 2 ** s.level)!;
        remember(s.level, s.index, hash);
        found.set(key(s.level, s.index), hash);
      }
    }
    const rest = await subtrees(
      q,
      wanted.filter((s) => !found.has(key(s.level, s.index))),
    );
    return fn((level, index) => found.get(key(level, index)) ?? rest.get(key(level, index)));
  }

  async function latestCheckpoint(q: Db = db): Promise<StoredCheckpoint | undefined> {
    const row = await q
      .selectFrom('audit_checkpoints')
      .selectAll()
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row && toCheckpoint(row);
  }

  /**
   * Stores every complete subtree of 256+ leaves within the first `size` leaves that is
   * not stored yet. Idempotent; runs inside the publishing transaction.
   */
  async function extendNodes(q: Db, size: number): Promise<void> {
    const stored = await q
      .selectFrom('audit_tree_nodes')
      .select(['level', sql<string>`max(idx) + 1`.as('count')])
      .groupBy('level')
      .execute();
    const have = new Map(stored.map((r) => [r.level, Number(r.count)]));
    for (let level = TILE_LEVEL; 2 ** level <= size; level++) {
      const target = Math.floor(size / 2 ** level);
      let next = have.get(level) ?? 0;
      while (next < target) {
        const upto = Math.min(target, next + LEAF_PAGE / TILE);
        const hashes: Buffer[] = [];
        if (level === TILE_LEVEL) {
          const leaves = await leafHashes(q, next * TILE, upto * TILE);
          for (let i = next; i < upto; i++) {
            hashes.push(treeOf(leaves.slice((i - next) * TILE, (i - next + 1) * TILE)));
          }
        } else {
          const children = await q
            .selectFrom('audit_tree_nodes')
            .select(['idx', 'hash'])
            .where('level', '=', level - 1)
            .where('idx', '>=', String(2 * next))
            .where('idx', '<', String(2 * upto))
            .orderBy('idx')
            .execute();
          if (children.length !== 2 * (upto - next)) {
            throw new Error(`audit tree nodes at level ${level - 1} are not all there`);
          }
          for (let i = 0; i < upto - next; i++) {
            hashes.push(treeOf([children[2 * i]!.hash, children[2 * i + 1]!.hash]));
          }
        }
        await q
          .insertInto('audit_tree_nodes')
          .values(hashes.map((hash, i) => ({ level, idx: String(next + i), hash })))
          .onConflict((oc) => oc.columns(['level', 'idx']).doNothing())
          .execute();
        hashes.forEach((hash, i) => remember(level, next + i, hash));
        next = upto;
      }
    }
  }

  async function rootAt(q: Db, size: number): Promise<Buffer> {
    if (size === 0) return rootHash(() => undefined, 0);
    return withRanges(q, [[0, size]], (get) => rangeHash(get, 0, size));
  }

  /**
   * Publishes a signed checkpoint of the tree as committed now, if it grew since the
   * newest checkpoint. One publisher at a time across instances.
   */
  async function publish(): Promise<StoredCheckpoint | undefined> {
    return inTransaction(db, async (trx) => {
      await sql`lock table audit_checkpoints in share row exclusive mode`.execute(trx);
      const size = await committedSize(trx);
      const latest = await latestCheckpoint(trx);
      if (size === 0 || (latest && latest.size >= size)) return undefined;
      await extendNodes(trx, size);
      const checkpoint = {
        origin: AUDIT_LOG_ORIGIN,
        size,
        root: await rootAt(trx, size),
        time: opts.clock.now(),
      };
      const note = signCheckpoint(checkpoint, opts.signer);
      await trx
        .insertInto('audit_checkpoints')
        .values({
          tree_size: String(size),
          root_hash: checkpoint.root,
          at: checkpoint.time,
          note,
        })
        .execute();
      return { size, root: checkpoint.root, time: checkpoint.time, note };
    });
  }

  /** The newest checkpoint that covers leaf `index`, published now if none does yet. */
  async function checkpointCovering(index: number): Promise<StoredCheckpoint | undefined> {
    const latest = await latestCheckpoint();
    if (latest && latest.size > index) return latest;
    await publish();
    const now = await latestCheckpoint();
    return now && now.size > index ? now : undefined;
  }

  /** RFC 9162 §2.1.3.1 audit path of leaf `index` in the tree of `size` leaves. */
  async function inclusionProof(index: number, size: number): Promise<Buffer[]> {
    const ranges = inclusionRanges(index, size);
    return withRanges(db, ranges, (get) => ranges.map(([a, b]) => rangeHash(get, a, b)));
  }

  async function checkpointOfSize(size: number): Promise<StoredCheckpoint | undefined> {
    const row = await db
      .selectFrom('audit_checkpoints')
      .selectAll()
      .where('tree_size', '=', String(size))
      .executeTakeFirst();
    return row && toCheckpoint(row);
  }

  return {
    /** The checkpoint verifier key, `<name>+<key id>+<base64 key>` (checkpoint.ts). */
    verifierKey: opts.signer.verifierKey,
    publish,
    latestCheckpoint: () => latestCheckpoint(),
    checkpointOfSize,

    checkpointCovering,
    inclusionProof,

    /** RFC 9162 §2.1.4.1 consistency proof from the tree of `first` to that of `second`. */
    async consistencyProof(first: number, second: number): Promise<Buffer[]> {
      const ranges = consistencyRanges(first, second);
      return withRanges(db, ranges, (get) => ranges.map(([a, b]) => rangeHash(get, a, b)));
    },

    /**
     * Everything needed to check, offline, that entry `index` is in the signed log: its
     * canonical bytes and leaf hash, the newest checkpoint (published now if it does not
     * cover the entry yet) and the audit path to that checkpoint's root.
     */
    async proveEntry(index: number): Promise<EntryProof | undefined> {
      const row = await db
        .selectFrom('audit_log')
        .selectAll()
        .where('leaf_index', '=', String(index))
        .executeTakeFirst();
      if (!row) return undefined;
      const checkpoint = await checkpointCovering(index);
      if (!checkpoint) return undefined;
      const path = await inclusionProof(index, checkpoint.size);
      const b64 = (b: Buffer) => b.toString('base64');
      return {
        leaf_index: index,
        leaf: b64(encodeLeaf(leafFields(row, index))),
        leaf_hash: b64(row.leaf_hash),
        tree_size: checkpoint.size,
        root_hash: b64(checkpoint.root),
        checkpoint: checkpoint.note,
        checkpoint_signature: noteSignature(checkpoint.note) ?? '',
        verifier_key: opts.signer.verifierKey,
        audit_path: path.map(b64),
      };
    },

    /** MTH of the first `size` leaves, from the stored leaf hashes and nodes. */
    root: (size: number) => rootAt(db, size),

    /**
     * Publishes a checkpoint every `intervalMs` when the tree grew; any number of
     * instances may run one. The returned stop publishes a last one.
     */
    startPublishing(o: { logger: Logger; intervalMs?: number }): () => Promise<void> {
      let running: Promise<void> | undefined;
      const tick = () =>
        (running ??= publish()
          .then((c) => {
            if (c) o.logger.debug({ treeSize: c.size }, 'audit checkpoint published');
          })
          .catch((err: unknown) => o.logger.warn({ err }, 'audit checkpoint failed'))
          .finally(() => {
            running = undefined;
          }));
      const timer = setInterval(() => void tick(), o.intervalMs ?? 10_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
        await tick();
      };
    },
  };
}

export type AuditTree = ReturnType<typeof createAuditTree>;

function toCheckpoint(row: {
  tree_size: string;
  root_hash: Buffer;
  at: Date;
  note: string;
}): StoredCheckpoint {
  return {
    size: Number(row.tree_size),
    root: row.root_hash,
    time: new Date(row.at),
    note: row.note,
  };
}
