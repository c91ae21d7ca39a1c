import { sql, type Kysely } from 'kysely';
import type { Clock } from '../clock.js';

/**
 * The append-only audit log: every security-relevant operation, by whom, on what, when.
 * Entries carry references (ids, keyed hashes), never personal data values, so deletion
 * duties never collide with immutability. The database itself refuses UPDATE and DELETE.
 */
export interface AuditLogTable {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

export interface AuditTables {
  audit_log: AuditLogTable;
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

export interface AuditEntry {
  actor: string;
  action: string;
  subject?: string | undefined;
  details?: Record<string, unknown>;
  /**
   * When it happened, if earlier than the append: a data read is stamped with the moment
   * its consent was checked, so the log never shows it after a revocation that it preceded.
   */
  at?: Date | undefined;
}

/** Entries written in one transaction at most; more wait for the next batch. */
const MAX_BATCH = 500;

interface Waiting {
  row: Omit<AuditLogTable, 'seq'>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export function createAuditLog(db: Kysely<AuditTables>, clock: Clock) {
  // Group commit: appends that arrive while a batch is being written go together in the
  // next one, so a busy service pays one durable commit per batch, not per request. Each
  // append still resolves only once its own entry is committed.
  const queue: Waiting[] = [];
  let writing = false;

  async function drain(): Promise<void> {
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      try {
        await db
          .insertInto('audit_log')
          .values(batch.map((w) => ({ ...w.row, details: JSON.stringify(w.row.details) })) as never)
          .execute();
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
        queue.push({
          row: {
            at: entry.at ?? clock.now(),
            actor: entry.actor,
            action: entry.action,
            subject: entry.subject ?? null,
            details: entry.details ?? {},
          },
          resolve,
          reject,
        });
        if (!writing) {
          writing = true;
          // Let the appends of this tick join the first batch.
          setImmediate(() => void drain());
        }
      });
    },

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
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
