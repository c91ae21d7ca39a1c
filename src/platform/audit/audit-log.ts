import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { sql, type Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import { keyedHash } from '../crypto/keyed-hash.js';
import { inTransaction, isUniqueViolation } from '../db/index.js';
import { encodeLeaf, type LeafFields } from './leaf.js';
import { leafHash } from './merkle.js';

/**
 * The append-only audit log: every security-relevant operation, by whom, on what, when.
 * Entries carry references (ids, keyed hashes), never personal data values, so deletion
 * duties never collide with immutability. The database itself refuses UPDATE and DELETE.
 *
 * Each entry is also leaf `leaf_index` of a Merkle tree (RFC 9162; merkle.ts), whose
 * leaf bytes are its canonical encoding (leaf.ts). Indexes are dense and in commit order,
 * whatever the number of instances appending (see writeBatch). Signed
 * checkpoints and proofs: audit-tree.ts; `soglasie audit verify`: audit-verify.ts.
 */
export interface AuditLogTable {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
  /** Position in the Merkle tree, from 0, no gaps. */
  leaf_index: string;
  /** SHA-256(0x00 || encodeLeaf(entry)). */
  leaf_hash: Buffer;
}

/** Complete subtrees of 256 leaves and more (a cache for proofs; audit-tree.ts). */
export interface AuditTreeNodeTable {
  level: number;
  idx: string;
  hash: Buffer;
}

/** Signed checkpoints: the tree head at a size, as a signed note (checkpoint.ts). */
export interface AuditCheckpointTable {
  tree_size: string;
  root_hash: Buffer;
  at: Date;
  note: string;
}

export interface AuditTables {
  audit_log: AuditLogTable;
  audit_tree_nodes: AuditTreeNodeTable;
  audit_checkpoints: AuditCheckpointTable;
}

export async function createAuditTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table audit_log (
      seq bigserial primary key,
      at timestamptz not null,
      actor text not null,
      action text not null,
      subject text,
      details jsonb not null default '{}'::jsonb
    )`.execute(db);
  await sql`create index audit_log_subject_idx on audit_log (subject, seq)`.execute(db);
  await sql`
    create function audit_log_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_log is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  await sql`
    create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_refuse_change()`.execute(db);
  await sql`
    create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_refuse_change()`.execute(db);
}

/**
 * The Merkle tree over the log (a later migration than createAuditTables): leaf index and
 * hash on every entry, existing entries numbered in `seq` order, the node cache and the
 * checkpoints, both append-only like the log.
 */
export async function addAuditMerkle(db: Kysely<never>): Promise<void> {
  await sql`alter table audit_log add column leaf_index bigint, add column leaf_hash bytea`.execute(
    db,
  );
  await backfillLeaves(db as unknown as Kysely<AuditTables>);
  await sql`
    alter table audit_log
      alter column leaf_index set not null,
      alter column leaf_hash set not null,
      add constraint audit_log_leaf_index_check check (leaf_index >= 0),
      add constraint audit_log_leaf_hash_check check (octet_length(leaf_hash) = 32)`.execute(db);
  await sql`create unique index audit_log_leaf_idx on audit_log (leaf_index)`.execute(db);

  await sql`
    create table audit_tree_nodes (
      level smallint not null check (level between 0 and 62),
      idx bigint not null check (idx >= 0),
      hash bytea not null check (octet_length(hash) = 32),
      primary key (level, idx)
    )`.execute(db);
  await sql`
    create table audit_checkpoints (
      tree_size bigint primary key check (tree_size >= 0),
      root_hash bytea not null check (octet_length(root_hash) = 32),
      at timestamptz not null,
      note text not null
    )`.execute(db);
  await sql`
    create function audit_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception '% is append-only: % refused', tg_table_name, tg_op using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  for (const table of ['audit_tree_nodes', 'audit_checkpoints']) {
    await sql`
      create trigger ${sql.raw(`${table}_append_only`)} before update or delete on ${sql.table(table)}
      for each row execute function audit_refuse_change()`.execute(db);
    await sql`
      create trigger ${sql.raw(`${table}_no_truncate`)} before truncate on ${sql.table(table)}
      for each statement execute function audit_refuse_change()`.execute(db);
  }
}

/**
 * Numbers the entries written before the tree existed, in `seq` order. The only UPDATE
 * the log ever sees: it fills the two new columns and touches nothing else, inside the
 * migration's transaction, with the append-only trigger off for that transaction only.
 */
async function backfillLeaves(db: Kysely<AuditTables>): Promise<void> {
  const first = await db.selectFrom('audit_log').select('seq').limit(1).executeTakeFirst();
  if (!first) return;
  await sql`alter table audit_log disable trigger audit_log_append_only`.execute(db);
  let index = 0;
  let after = '0';
  for (;;) {
    const rows = await db
      .selectFrom('audit_log')
      .select(['seq', 'at', 'actor', 'action', 'subject', 'details'])
      .where('seq', '>', after)
      .orderBy('seq')
      .limit(1000)
      .execute();
    if (rows.length === 0) break;
    const values = rows.map((row) => {
      const hash = leafHash(encodeLeaf(leafFields(row, index)));
      return sql`(${row.seq}::bigint, ${index++}::bigint, ${hash}::bytea)`;
    });
    await sql`
      update audit_log set leaf_index = v.leaf_index, leaf_hash = v.leaf_hash
      from (values ${sql.join(values)}) as v (seq, leaf_index, leaf_hash)
      where audit_log.seq = v.seq`.execute(db);
    after = rows.at(-1)!.seq;
  }
  await sql`alter table audit_log enable trigger audit_log_append_only`.execute(db);
}

/** The fields of a stored row as the leaf encoding takes them. */
export function leafFields(
  row: Pick<AuditLogTable, 'at' | 'actor' | 'action' | 'subject' | 'details'>,
  index: number,
): LeafFields {
  return {
    index,
    at: new Date(row.at),
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: row.details,
  };
}

export interface AuditEntry {
  /** Who: `citizen:<id>`, `partner:<client_id>`, `security:<id>`, … never a name. */
  actor: string;
  action: string;
  /** On what: `consent:<id>`, `webhook:<id>`, a client id, … */
  subject?: string | undefined;
  /**
   * Ids, codes, field names; never personal values. As a safety net, string values that
   * are an e-mail address, an IP address or a phone-like number (10+ digits: phones,
   * SNILS, INN, passports) are replaced by their keyed hash (see `pseudonym`), in the
   * actor and the subject too; pass `audit.pseudonym(kind, value)` yourself to be explicit.
   */
  details?: Record<string, unknown>;
  /**
   * When it happened, if earlier than the append: a data read is stamped with the moment
   * its consent was checked, so the log never shows it after a revocation that it preceded.
   */
  at?: Date | undefined;
}

/** Entries written in one transaction at most; more wait for the next batch. */
const MAX_BATCH = 500;

type NewRow = Omit<AuditLogTable, 'seq' | 'leaf_index' | 'leaf_hash'>;

interface Waiting {
  row: NewRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface AuditLogOptions {
  /**
   * Key (≥ 32 bytes) for pseudonyms of personal values; a service key in production so
   * that equal values get equal pseudonyms across restarts. Default: a random key.
   */
  pseudonymKey?: Buffer | undefined;
}

export function createAuditLog(
  db: Kysely<AuditTables>,
  clock: Clock,
  options: AuditLogOptions = {},
) {
  const pseudonymKey = options.pseudonymKey ?? randomBytes(32);
  const pseudonym = (kind: string, value: string) =>
    `hmac:${kind}:${keyedHash(pseudonymKey, `audit:${kind}:${value}`).slice(0, 32)}`;
  const scrub = scrubber(pseudonym);

  // Group commit: appends that arrive while a batch is being written go together in the
  // next one, so a busy service pays one durable commit per batch, not per request. Each
  // append still resolves only once its own entry is committed.
  const queue: Waiting[] = [];
  let writing = false;

  const insert = (q: Kysely<AuditTables>, batch: Waiting[], first: number) =>
    q
      .insertInto('audit_log')
      .values(
        batch.map((w, i) => ({
          ...w.row,
          details: JSON.stringify(w.row.details),
          leaf_index: String(first + i),
          leaf_hash: leafHash(encodeLeaf(leafFields(w.row, first + i))),
        })) as never,
      )
      .execute();

  /** The next leaf index as far as this instance knows; undefined until it has looked. */
  let next: number | undefined;

  async function writeBatch(batch: Waiting[]): Promise<void> {
    // Fast path: the indexes after this instance's last batch, in one statement. If
    // another instance took them meanwhile, the unique index refuses the whole batch
    // (nothing is written) and it goes the slow way. Indexes stay dense either way: a
    // batch only ever starts right after an index already committed.
    if (next !== undefined) {
      const first = next;
      next = undefined;
      try {
        await insert(db, batch, first);
        next = first + batch.length;
        return;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
    }
    // Slow path: one writer at a time across instances (readers are not blocked), so the
    // batch starts right after the newest committed index and commits before any other.
    const first = await inTransaction(db, async (trx) => {
      await sql`lock table audit_log in share row exclusive mode`.execute(trx);
      const { start } = await trx
        .selectFrom('audit_log')
        .select(sql<string>`coalesce(max(leaf_index) + 1, 0)`.as('start'))
        .executeTakeFirstOrThrow();
      await insert(trx, batch, Number(start));
      return Number(start);
    });
    next = first + batch.length;
  }

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await writeBatch(batch);
        for (const w of batch) w.resolve();
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    writing = false;
  }

  return {
    append(entry: AuditEntry): Promise<void> {
      return new Promise((resolve, reject) => {
        let row: NewRow;
        try {
          row = {
            at: entry.at ?? clock.now(),
            actor: scrub(text(entry.actor)),
            action: text(entry.action),
            subject: entry.subject === undefined ? null : scrub(text(entry.subject)),
            // What is stored is exactly what is hashed: the JSON round trip drops what
            // jsonb cannot keep (undefined, functions) and turns dates into strings.
            details: scrubValue(
              JSON.parse(JSON.stringify(entry.details ?? {})) as unknown,
              scrub,
            ) as Record<string, unknown>,
          };
        } catch (err) {
          reject(err);
          return;
        }
        queue.push({ row, resolve, reject });
        if (!writing) {
          writing = true;
          // Let the appends of this tick join the first batch.
          setImmediate(() => void drain());
        }
      });
    },

    /** A stable keyed hash standing for a personal value, e.g. pseudonym('ip', address). */
    pseudonym,

    /** Entries about any of the given subjects, newest first. */
    async listForSubjects(subjects: string[], action: string, limit = 500) {
      if (subjects.length === 0) return [];
      return db
        .selectFrom('audit_log')
        .selectAll()
        .where('subject', 'in', subjects)
        .where('action', '=', action)
        .orderBy('seq', 'desc')
        .limit(limit)
        .execute();
    },

    async list(filter: { subject?: string; action?: string; limit?: number } = {}) {
      let query = db.selectFrom('audit_log').selectAll();
      if (filter.subject) query = query.where('subject', '=', filter.subject);
      if (filter.action) query = query.where('action', '=', filter.action);
      return query
        .orderBy('seq', 'desc')
        .limit(filter.limit ?? 100)
        .execute();
    },

    /** The entry at a leaf index, if there is one. */
    async byLeafIndex(index: number) {
      if (!Number.isSafeInteger(index) || index < 0) return undefined;
      return db
        .selectFrom('audit_log')
        .selectAll()
        .where('leaf_index', '=', String(index))
        .executeTakeFirst();
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

/** PostgreSQL text holds neither NUL nor lone surrogates; a bad string must not sink a batch. */
function text(value: string): string {
  if (typeof value !== 'string') throw new TypeError('audit entry fields are strings');
  return value.toWellFormed().replaceAll('\0', '\uFFFD');
}

const EMAIL = /[^\s@<>()"',;:]+@[^\s@<>()"',;:]+\.[^\s@<>()"',;:]+/gu;
const DIGITS = /^\+?[\d\s()-]+$/u;
const PREFIXED = /^([a-z][a-z0-9_.-]*:)(.+)$/u;

/** Replaces personal values in a string with pseudonyms (see AuditEntry.details). */
function scrubber(pseudonym: (kind: string, value: string) => string) {
  const whole = (value: string): string | undefined => {
    if (isIP(value)) return pseudonym('ip', value);
    if (DIGITS.test(value) && value.replace(/\D/gu, '').length >= 10) {
      return pseudonym('number', value.replace(/\D/gu, ''));
    }
    return undefined;
  };
  return (value: string): string => {
    const replaced = whole(value);
    if (replaced) return replaced;
    const prefixed = PREFIXED.exec(value);
    const inner = prefixed ? whole(prefixed[2]!) : undefined;
    if (inner) return `${prefixed![1]}${inner}`;
    return value.replace(EMAIL, (email) => pseudonym('email', email.toLowerCase()));
  };
}

function scrubValue(value: unknown, scrub: (s: string) => string): unknown {
  if (typeof value === 'string') return scrub(text(value));
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, scrub));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [text(k), scrubValue(v, scrub)]),
    );
  }
  return value;
}
