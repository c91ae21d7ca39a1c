import { sql, type Kysely } from 'kysely';

/**
 * The audit log as the security center reads it: newest entries matching the filters, and
 * everything after a given sequence number for the live stream. Read-only; the log itself
 * (platform/audit) is append-only and refuses changes at the database level.
 */
interface AuditRow {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

interface AuditFeedTables {
  audit_log: AuditRow;
}

/** Each filter matches from the start of the field: `partner:` finds every partner. */
export interface AuditFilter {
  actor?: string | undefined;
  action?: string | undefined;
  subject?: string | undefined;
}

export interface AuditFeedEntry {
  seq: string;
  at: Date;
  actor: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

/** `LIKE 'value%'` with the value's own wildcards taken literally. */
const prefix = (value: string) => `${value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export function createAuditFeed(db: Kysely<AuditFeedTables>) {
  const filtered = (filter: AuditFilter) => {
    let query = db
      .selectFrom('audit_log')
      .select(['seq', 'at', 'actor', 'action', 'subject', 'details']);
    if (filter.actor) query = query.where('actor', 'like', prefix(filter.actor));
    if (filter.action) query = query.where('action', 'like', prefix(filter.action));
    if (filter.subject) query = query.where('subject', 'like', prefix(filter.subject));
    return query;
  };
  const toEntry = (r: AuditRow): AuditFeedEntry => ({
    seq: String(r.seq),
    at: new Date(r.at),
    actor: r.actor,
    action: r.action,
    subject: r.subject,
    details: r.details ?? {},
  });

  return {
    /** The newest `limit` entries matching, newest first. */
    async latest(filter: AuditFilter, limit = 100): Promise<AuditFeedEntry[]> {
      const rows = await filtered(filter).orderBy('seq', 'desc').limit(limit).execute();
      return rows.map(toEntry);
    },

    /** Entries after `seq` matching, oldest first (what a live view has not shown yet). */
    async after(seq: string, filter: AuditFilter, limit = 200): Promise<AuditFeedEntry[]> {
      const rows = await filtered(filter)
        .where('seq', '>', sql<string>`cast(${seq} as bigint)`)
        .orderBy('seq', 'asc')
        .limit(limit)
        .execute();
      return rows.map(toEntry);
    },

    /** The newest sequence number in the log ('0' when empty). */
    async lastSeq(): Promise<string> {
      const row = await db
        .selectFrom('audit_log')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      return row?.seq ? String(row.seq) : '0';
    },
  };
}

export type AuditFeed = ReturnType<typeof createAuditFeed>;
