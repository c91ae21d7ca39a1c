import type { Kysely } from 'kysely';
import { leafFields, type AuditTables } from './audit-log.js';
import { openCheckpoint, type NoteVerifier } from './checkpoint.js';
import { encodeLeaf } from './leaf.js';
import { MemoryTree, leafHash, rootHash, verifyConsistency } from './merkle.js';

/**
 * `soglasie audit verify`: recomputes the whole tree from the stored entries (their
 * canonical bytes, not the stored hashes) and checks, in leaf order, stopping at the
 * first problem:
 * - leaf indexes run 0, 1, 2, … without gaps;
 * - each entry's stored leaf hash is the hash of its content;
 * - each checkpoint, when the recomputation reaches its size: the note's signature by the
 *   audit log key, the note agrees with its row, its root is the recomputed root, and the
 *   consistency proof from the previous checkpoint (RFC 9162 §2.1.4) verifies;
 * - no checkpoint covers more entries than there are;
 * - the stored nodes (the proof cache) are the recomputed ones.
 * Entries after the newest checkpoint are covered by their stored hashes only, until the
 * next checkpoint.
 */
export class AuditLogTamperedError extends Error {
  readonly code = 'ERR_AUDIT_TAMPERED';
  constructor(
    /** The first leaf index that is wrong (or the start of the range it lies in). */
    readonly index: number,
    readonly reason: string,
  ) {
    super(`audit log verification failed at index ${index}: ${reason}`);
  }
}

export interface AuditVerifyResult {
  entries: number;
  checkpoints: number;
  /** Size of the newest checkpoint (0 without one). */
  checkpointedSize: number;
  /** Stored tree nodes compared. */
  nodes: number;
  ms: number;
}

export interface AuditVerifyOptions {
  /** Entries read per query. */
  page?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

interface CheckpointRow {
  tree_size: string;
  root_hash: Buffer;
  at: Date;
  note: string;
}

export async function verifyAuditLog(
  db: Kysely<AuditTables>,
  verifier: NoteVerifier,
  opts: AuditVerifyOptions = {},
): Promise<AuditVerifyResult> {
  const started = performance.now();
  const page = opts.page ?? 10_000;
  const { n } = await db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const total = Number(n);

  const checkpoints = pagedCheckpoints(db);
  let next = await checkpoints.next();
  let previous: { size: number; root: Buffer } | undefined;
  let checked = 0;

  const tree = new MemoryTree();
  const checkCheckpoint = (row: CheckpointRow) => {
    const size = Number(row.tree_size);
    // Everything before the previous (good) checkpoint is proven; the fault is after it.
    const from = previous?.size ?? 0;
    const fail = (why: string): never => {
      throw new AuditLogTamperedError(from, `the checkpoint at tree size ${size} ${why}`);
    };
    let signed;
    try {
      signed = openCheckpoint(row.note, verifier);
    } catch (err) {
      return fail(`is not validly signed (${(err as Error).message}): forged or damaged`);
    }
    if (
      signed.size !== size ||
      !signed.root.equals(row.root_hash) ||
      signed.time.getTime() !== new Date(row.at).getTime()
    ) {
      return fail('does not match its signed note: forged or damaged');
    }
    if (!rootHash(tree.subtree, size).equals(signed.root)) {
      return fail(
        `does not match the entries: one in ${from}…${size - 1} was changed together with its stored hash`,
      );
    }
    if (previous) {
      const proof = tree.consistencyProof(previous.size, size);
      if (!verifyConsistency(previous.size, size, previous.root, signed.root, proof)) {
        return fail(`is not consistent with the checkpoint at tree size ${previous.size}`);
      }
    }
    previous = { size, root: signed.root };
    checked++;
  };

  // A checkpoint of the empty tree (never published, but possible) needs no entries.
  while (next && Number(next.tree_size) === 0) {
    checkCheckpoint(next);
    next = await checkpoints.next();
  }

  const fetchPage = (after: number) => {
    const page$ = db
      .selectFrom('audit_log')
      .select(['leaf_index', 'at', 'actor', 'action', 'subject', 'details', 'leaf_hash'])
      .where('leaf_index', '>', String(after))
      .orderBy('leaf_index')
      .limit(page)
      .execute();
    page$.catch(() => undefined); // awaited below, unless verification stops first
    return page$;
  };
  // The next page is read while this one is hashed (a server database works meanwhile).
  let pending = fetchPage(-1);
  for (;;) {
    // Let timers run (PGlite answers within microtasks, so the loop would never yield).
    await new Promise((resolve) => setImmediate(resolve));
    opts.signal?.throwIfAborted();
    const rows = await pending;
    if (rows.length === 0) break;
    pending = fetchPage(Number(rows.at(-1)!.leaf_index));
    for (const row of rows) {
      const index = tree.size;
      const stored = Number(row.leaf_index);
      if (stored !== index) {
        throw new AuditLogTamperedError(
          index,
          stored > index
            ? `entry ${index} is missing (the next one is ${stored})`
            : `entry ${stored} appears twice`,
        );
      }
      const hash = leafHash(encodeLeaf(leafFields(row, index)));
      if (!hash.equals(row.leaf_hash)) {
        throw new AuditLogTamperedError(
          index,
          `entry ${index} was changed: its content does not hash to its stored leaf hash`,
        );
      }
      tree.append(hash);
      while (next && Number(next.tree_size) === tree.size) {
        checkCheckpoint(next);
        next = await checkpoints.next();
      }
    }
    opts.onProgress?.(tree.size, total);
  }

  if (next) {
    const size = Number(next.tree_size);
    throw new AuditLogTamperedError(
      tree.size,
      `entry ${tree.size} is missing: the checkpoint at tree size ${size} covers entries up to ${size - 1}, the log has ${tree.size}`,
    );
  }

  let nodes = 0;
  let last: { level: number; idx: string } | undefined;
  for (;;) {
    const rows = await db
      .selectFrom('audit_tree_nodes')
      .select(['level', 'idx', 'hash'])
      .$if(last !== undefined, (q) =>
        q.where((eb) =>
          eb.or([
            eb('level', '>', last!.level),
            eb.and([eb('level', '=', last!.level), eb('idx', '>', last!.idx)]),
          ]),
        ),
      )
      .orderBy('level')
      .orderBy('idx')
      .limit(page)
      .execute();
    if (rows.length === 0) break;
    for (const r of rows) {
      const index = Number(r.idx);
      const expected = tree.subtree(r.level, index);
      if (!expected?.equals(r.hash)) {
        const width = 2 ** r.level;
        throw new AuditLogTamperedError(
          index * width,
          `stored tree node ${r.level}/${index} (entries ${index * width}…${(index + 1) * width - 1}) ${
            expected ? 'differs from the recomputed one' : 'lies beyond the log'
          }: proofs that use it would fail`,
        );
      }
      nodes++;
    }
    last = rows.at(-1)!;
  }

  return {
    entries: tree.size,
    checkpoints: checked,
    checkpointedSize: previous?.size ?? 0,
    nodes,
    ms: performance.now() - started,
  };
}

/** Checkpoints in size order, a page at a time (there is one every few seconds of activity). */
function pagedCheckpoints(db: Kysely<AuditTables>) {
  let buffer: CheckpointRow[] = [];
  let after = -1;
  let done = false;
  return {
    async next(): Promise<CheckpointRow | undefined> {
      if (buffer.length === 0 && !done) {
        buffer = await db
          .selectFrom('audit_checkpoints')
          .selectAll()
          .where('tree_size', '>', String(after))
          .orderBy('tree_size')
          .limit(1000)
          .execute();
        if (buffer.length === 0) done = true;
        else after = Number(buffer.at(-1)!.tree_size);
      }
      return buffer.shift();
    },
  };
}
