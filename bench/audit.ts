/*
 * The audit log phases of `npm run bench` (issue 5, item 9), on a database of their own
 * (a temporary embedded PGlite directory, or a new database on BENCH_DATABASE_URL),
 * after the HTTP phases have stopped their services:
 *
 * 1. Appends with group commit, against a bare baseline. Both run the same closed loop:
 *    CONCURRENCY callers each appending a data-read entry and awaiting its commit, then
 *    the next, for APPEND_S seconds after a warm-up. The measured log is the real one
 *    (createAuditLog): per batch each entry's canonical bytes hashed and one INSERT at the
 *    leaf indexes after its previous batch (the unique index refuses them if another
 *    instance took them; then a transaction locks the log, reads the next index and
 *    inserts; the first batch goes that way too).
 *    The baseline is the log as it was before the Merkle tree: the same group commit
 *    (same batching, one multi-row INSERT per batch, each append resolved after its
 *    commit) into the pre-tree table, with no lock, no index and no hashing.
 * 2. `audit verify` over LEAVES entries. The entries are generated in SQL (their leaf
 *    hashes too, from the canonical bytes of leaf.ts built with int8send/convert_to and
 *    sha256), signed checkpoints published at each quarter by the real publisher, then
 *    verifyAuditLog — exactly what the CLI runs — recomputes everything from the content.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { systemClock } from '../src/platform/clock.js';
import {
  addAuditMerkle,
  createAuditLog,
  createAuditTables,
  type AuditTables,
} from '../src/platform/audit/audit-log.js';
import { createAuditTree } from '../src/platform/audit/audit-tree.js';
import { verifyAuditLog } from '../src/platform/audit/audit-verify.js';
import { checkpointSigner } from '../src/platform/audit/checkpoint.js';
import { verifyConsistency, verifyInclusion } from '../src/platform/audit/merkle.js';
import { migrateToLatest, openDatabase } from '../src/platform/db/index.js';
import { createBenchDatabase } from './postgres.js';
import type { Verdict } from './report.js';

export const AUDIT_TARGETS = { appendRatio: 0.25, verifyS: 60 };
const LEAVES = Number(process.env.BENCH_AUDIT_LEAVES ?? 1_000_000);
const CONCURRENCY = 50;
const WARMUP_S = 0.5;
const APPEND_S = 3;
/** Rows per generating INSERT … SELECT. */
const GENERATE_CHUNK = 50_000;

export interface AuditRow {
  name: string;
  value: string;
  target: string;
  verdict: Verdict;
}

export interface AuditBenchResult {
  rows: AuditRow[];
  notes: string[];
}

const MIGRATIONS = {
  '0001_audit': { up: (db: Kysely<never>) => createAuditTables(db) },
  '0002_audit_merkle': { up: (db: Kysely<never>) => addAuditMerkle(db) },
};

/** Drops and removals still owed; the budget backstop runs them (bounded) if need be. */
const owed = new Set<() => Promise<void>>();
const within = <T>(ms: number, work: Promise<T>) =>
  Promise.race([work, new Promise<void>((r) => setTimeout(r, ms).unref())]);

/** A database for one phase; close() also removes it. */
async function benchDatabase(adminUrl: string | undefined, label: string) {
  let remove: () => Promise<void>;
  let database: Awaited<ReturnType<typeof openDatabase<AuditTables>>>;
  if (adminUrl) {
    const created = await createBenchDatabase(adminUrl);
    database = await openDatabase<AuditTables>({ name: label, url: created.url });
    remove = () => created.drop();
  } else {
    const dir = await mkdtemp(path.join(os.tmpdir(), `soglasie-bench-${label}-`));
    // Whatever happens, the directory goes when the process does.
    const atExit = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', atExit);
    database = await openDatabase<AuditTables>({ name: label, dataDir: dir });
    remove = async () => {
      await rm(dir, { recursive: true, force: true });
      process.off('exit', atExit);
    };
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      owed.delete(close);
      await within(
        10_000,
        database.close().catch(() => {}),
      );
      await remove();
    })());
  owed.add(close);
  return { database, close };
}

const entry = (i: number) => ({
  actor: 'partner:partner-bench',
  action: 'data.read',
  subject: `consent:${(i % 1000).toString(16).padStart(8, '0')}-bench`,
  details: { resource: 'person', fields: ['fullname', 'snils'], token: `jti-${i}` },
});

/** The audit log before the Merkle tree: group commit into the bare table, nothing else. */
function bareGroupCommit(db: Kysely<AuditTables>) {
  const queue: { row: Record<string, unknown>; done: (err?: unknown) => void }[] = [];
  let writing = false;
  const drain = async () => {
    while (queue.length > 0) {
      const batch = queue.splice(0, 500);
      try {
        await db
          .insertInto('audit_log')
          .values(batch.map((w) => w.row) as never)
          .execute();
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.done(err);
      }
    }
    writing = false;
  };
  return (e: ReturnType<typeof entry>) =>
    new Promise<void>((resolve, reject) => {
      queue.push({
        row: { ...e, at: new Date(), details: JSON.stringify(e.details) },
        done: (err) => (err ? reject(err) : resolve()),
      });
      if (!writing) {
        writing = true;
        setImmediate(() => void drain());
      }
    });
}

/** Appends per second: CONCURRENCY callers, each awaiting its append before the next. */
async function closedLoop(append: (e: ReturnType<typeof entry>) => Promise<void>) {
  let counting = false;
  let count = 0;
  let stop = false;
  let i = 0;
  const worker = async () => {
    while (!stop) {
      await append(entry(i++));
      if (counting) count++;
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, worker);
  await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, APPEND_S * 1000));
  counting = false;
  const seconds = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  return count / seconds;
}

async function measureAppends(adminUrl: string | undefined, result: AuditBenchResult) {
  const bare = await benchDatabase(adminUrl, 'audit-bare');
  const tree = await benchDatabase(adminUrl, 'audit-tree');
  try {
    await migrateToLatest(bare.database, { '0001_audit': MIGRATIONS['0001_audit'] });
    await migrateToLatest(tree.database, MIGRATIONS);
    const bareRate = await closedLoop(bareGroupCommit(bare.database.db));
    const log = createAuditLog(tree.database.db, systemClock);
    const treeRate = await closedLoop((e) => log.append(e));
    const { n } = await tree.database.db
      .selectFrom('audit_log')
      .select(sql<string>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    const ratio = treeRate / bareRate;
    result.rows.push(
      {
        name: 'audit append, bare baseline (group commit, no tree)',
        value: `${bareRate.toFixed(0)} /s`,
        target: 'reference',
        verdict: 'info',
      },
      {
        name: 'audit append, Merkle leaf (group commit)',
        value: `${treeRate.toFixed(0)} /s = ${ratio.toFixed(2)}×`,
        target: `≥ ${AUDIT_TARGETS.appendRatio}×`,
        verdict: ratio >= AUDIT_TARGETS.appendRatio ? 'PASS' : 'FAIL',
      },
    );
    result.notes.push(
      `Audit appends: ${CONCURRENCY} callers in a closed loop (each awaits its commit, then appends again), ${WARMUP_S} s warm-up + ${APPEND_S} s measured, on each log. Baseline: the log before the Merkle tree — the same group commit (≤ 500 entries per batch, one multi-row INSERT, each append resolved after its commit) into the same table without leaf columns; no lock, no leaf index, no hashing. Measured: createAuditLog — per batch each entry's canonical bytes hashed (SHA-256) and one INSERT at the leaf indexes after the previous batch, checked by the unique index (on a conflict with another instance, or for the first batch: a transaction that locks the log and reads the next index); ${Number(n)} entries written in all.`,
    );
  } finally {
    await bare.close();
    await tree.close();
  }
}

/** Entries [from, to) as the application would have written them, leaf hashes included. */
export function generate(from: number, to: number) {
  // Canonical bytes (leaf.ts): 0x01, index, time (ms), actor, action, 0x01 subject, details.
  return sql`
    insert into audit_log (at, actor, action, subject, details, leaf_index, leaf_hash)
    select timestamptz 'epoch' + ms * interval '1 millisecond', actor, 'data.read', subject,
           details::jsonb, i,
           sha256(decode('00', 'hex') || decode('01', 'hex') || int8send(i) || int8send(ms)
             || int4send(octet_length(actor)) || convert_to(actor, 'UTF8')
             || int4send(9) || convert_to('data.read', 'UTF8')
             || decode('01', 'hex') || int4send(octet_length(subject)) || convert_to(subject, 'UTF8')
             || int4send(octet_length(details)) || convert_to(details, 'UTF8'))
    from (
      select i, 1796083200000 + i as ms,
             'partner:partner-' || (i % 5) as actor,
             'consent:' || md5((i % 20000)::text) as subject,
             '{"fields":["fullname","snils"],"n":' || i || ',"resource":"person"}' as details
      from generate_series(${from}::bigint, ${to - 1}::bigint) as i
    ) s`;
}

async function measureVerify(
  adminUrl: string | undefined,
  result: AuditBenchResult,
  opts: { deadline: number; progress: (text: string) => void },
) {
  const { database, close } = await benchDatabase(adminUrl, 'audit-verify');
  try {
    await migrateToLatest(database, MIGRATIONS);
    // Verify reads by leaf index only; without the subject index the million rows go in
    // about twice as fast (generation is not what is measured).
    await sql`drop index audit_log_subject_idx`.execute(database.db);
    const signer = checkpointSigner(randomBytes(32));
    const tree = createAuditTree(database.db, { signer, clock: systemClock });
    const t0 = performance.now();
    const quarters = [1, 2, 3, 4].map((q) => Math.round((LEAVES * q) / 4));
    let done = 0;
    for (const checkpoint of quarters) {
      for (let from = done; from < checkpoint; from += GENERATE_CHUNK) {
        await generate(from, Math.min(checkpoint, from + GENERATE_CHUNK)).execute(database.db);
      }
      done = checkpoint;
      await tree.publish();
      opts.progress(`audit: ${done} entries generated, checkpoint signed`);
      if (Date.now() > opts.deadline) throw new Error('generating the entries took too long');
    }
    const generatedS = (performance.now() - t0) / 1000;

    // Proofs as the portal serves them, from a cold cache (another instance).
    const cold = createAuditTree(database.db, { signer, clock: systemClock });
    const p0 = performance.now();
    const index = Math.floor(LEAVES * 0.6180339);
    const path = await cold.inclusionProof(index, LEAVES);
    const proofMs = performance.now() - p0;
    const latest = (await cold.latestCheckpoint())!;
    const leaf = await database.db
      .selectFrom('audit_log')
      .select('leaf_hash')
      .where('leaf_index', '=', String(index))
      .executeTakeFirstOrThrow();
    const c0 = performance.now();
    const consistency = await cold.consistencyProof(quarters[0]!, LEAVES);
    const consistencyMs = performance.now() - c0;
    const first = (await cold.checkpointOfSize(quarters[0]!))!;
    const proofsOk =
      verifyInclusion(index, LEAVES, leaf.leaf_hash, path, latest.root) &&
      verifyConsistency(quarters[0]!, LEAVES, first.root, latest.root, consistency);

    opts.progress(`audit verify over ${LEAVES} entries…`);
    const verified = await verifyAuditLog(database.db, signer, {
      signal: AbortSignal.timeout(Math.max(1000, opts.deadline - Date.now())),
    });
    const verifyS = verified.ms / 1000;
    result.rows.push(
      {
        name: `audit verify, ${LEAVES.toLocaleString('en')} leaves, ${verified.checkpoints} checkpoints`,
        value: `${verifyS.toFixed(1)} s`,
        target: `≤ ${AUDIT_TARGETS.verifyS} s`,
        verdict: verified.entries === LEAVES && verifyS <= AUDIT_TARGETS.verifyS ? 'PASS' : 'FAIL',
      },
      {
        name: `inclusion + consistency proof at ${LEAVES.toLocaleString('en')}, cold cache`,
        value: `${proofMs.toFixed(1)} + ${consistencyMs.toFixed(1)} ms`,
        target: proofsOk ? 'both verify' : 'DID NOT VERIFY',
        verdict: proofsOk ? 'info' : 'FAIL',
      },
    );
    result.notes.push(
      `Audit verify: ${LEAVES} data-read entries generated in SQL (their leaf hashes too, from the canonical bytes) and 4 checkpoints signed by the real publisher, in ${generatedS.toFixed(1)} s (not counted; the subject index, which verify does not use, left out); then verifyAuditLog, what \`soglasie audit verify\` runs: every entry read in pages of 10 000, its canonical bytes rebuilt and hashed, the tree rebuilt in memory, each checkpoint's signature and root checked and each consecutive pair's consistency proof verified, ${verified.nodes} stored nodes compared.`,
    );
  } finally {
    await close();
  }
}

/** Runs both phases; a phase that fails to measure leaves a FAIL row and a note. */
export async function runAuditBench(opts: {
  postgresAdminUrl?: string | undefined;
  budgetMs: number;
  progress: (text: string) => void;
}): Promise<AuditBenchResult> {
  // Verify is aborted at the deadline; the rest bounds itself (timed loops).
  const deadline = Date.now() + opts.budgetMs - 3_000;
  const result: AuditBenchResult = {
    rows: [],
    notes: [
      `Audit database: ${opts.postgresAdminUrl ? 'PostgreSQL (new databases on BENCH_DATABASE_URL)' : 'embedded PGlite in temporary data directories'}.`,
    ],
  };
  const phase = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      result.rows.push({ name, value: '–', target: '', verdict: 'FAIL' });
      result.notes.push(`${name}: could not measure (${(err as Error).message}).`);
    }
  };
  const work = (async () => {
    opts.progress('audit appends: group commit with the Merkle tree vs the bare baseline…');
    await phase('audit append', () => measureAppends(opts.postgresAdminUrl, result));
    if (Date.now() > deadline - 30_000) {
      result.notes.push('Skipped audit verify: it would not finish inside the time budget.');
      return 'done' as const;
    }
    opts.progress(`audit verify: generating ${LEAVES} entries…`);
    await phase('audit verify', () =>
      measureVerify(opts.postgresAdminUrl, result, { deadline, progress: opts.progress }),
    );
    return 'done' as const;
  })();
  // Backstop: report what was measured, and clean up (bounded), rather than overrun.
  const overrun = new Promise<'overrun'>((r) =>
    setTimeout(() => r('overrun'), opts.budgetMs + 5_000).unref(),
  );
  if ((await Promise.race([work, overrun])) === 'overrun') {
    result.notes.push(`The audit phases were stopped at their ${opts.budgetMs / 1000} s budget.`);
    await within(10_000, Promise.allSettled([...owed].map((close) => close())));
  }
  return { rows: [...result.rows], notes: [...result.notes] };
}

export function auditTable(result: AuditBenchResult): string {
  const head = ['measurement', 'value', 'target', 'result'];
  const body = result.rows.map((r) => [r.name, r.value, r.target, r.verdict]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  return [
    line(head),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...body.map(line),
    '',
    ...result.notes,
  ].join('\n');
}
