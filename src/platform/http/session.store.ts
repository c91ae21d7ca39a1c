import { sql, type Kysely } from 'kysely';

export interface HttpSessionTable {
  /** SHA-256 of the cookie token: a database dump yields no usable session. */
  id: string;
  csrf_token: string;
  user_id: string | null;
  data: Record<string, unknown>;
  created_at: Date;
  expires_at: Date;
}

export interface SessionTables {
  http_sessions: HttpSessionTable;
}

/** Migration every service includes: server-side sessions. */
export async function createSessionTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table http_sessions (
      id text primary key,
      csrf_token text not null,
      user_id text,
      data jsonb not null default '{}'::jsonb,
      created_at timestamptz not null,
      expires_at timestamptz not null
    )`.execute(db);
  await sql`create index http_sessions_user_idx on http_sessions (user_id)`.execute(db);
  await sql`create index http_sessions_expiry_idx on http_sessions (expires_at)`.execute(db);
}

export interface SessionRecord {
  id: string;
  csrfToken: string;
  userId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
  expiresAt: Date;
}

export function createSessionStore(db: Kysely<SessionTables>) {
  const toRecord = (row: HttpSessionTable): SessionRecord => ({
    id: row.id,
    csrfToken: row.csrf_token,
    userId: row.user_id,
    data: row.data ?? {},
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
  });

  return {
    async find(id: string, now: Date): Promise<SessionRecord | undefined> {
      const row = await db
        .selectFrom('http_sessions')
        .selectAll()
        .where('id', '=', id)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return row ? toRecord(row) : undefined;
    },
    async insert(record: SessionRecord): Promise<void> {
      await db
        .insertInto('http_sessions')
        .values({
          id: record.id,
          csrf_token: record.csrfToken,
          user_id: record.userId,
          data: JSON.stringify(record.data) as unknown as Record<string, unknown>,
          created_at: record.createdAt,
          expires_at: record.expiresAt,
        })
        .execute();
    },
    async update(
      id: string,
      patch: { userId?: string | null; data?: Record<string, unknown>; expiresAt?: Date },
    ): Promise<void> {
      await db
        .updateTable('http_sessions')
        .set({
          ...(patch.userId !== undefined ? { user_id: patch.userId } : {}),
          ...(patch.data !== undefined
            ? { data: JSON.stringify(patch.data) as unknown as Record<string, unknown> }
            : {}),
          ...(patch.expiresAt !== undefined ? { expires_at: patch.expiresAt } : {}),
        })
        .where('id', '=', id)
        .execute();
    },
    async delete(id: string): Promise<void> {
      await db.deleteFrom('http_sessions').where('id', '=', id).execute();
    },
    /** Ends every session of a user at once (e.g. the security rules blocked the account). */
    async deleteForUser(userId: string): Promise<number> {
      const result = await db
        .deleteFrom('http_sessions')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
    async deleteExpired(now: Date): Promise<number> {
      const result = await db
        .deleteFrom('http_sessions')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
