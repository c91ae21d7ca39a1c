import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import type { IdGenerator } from '../ids.js';

/**
 * One-time codes sent by SMS or e-mail. A code is bound to one subject and one
 * purpose (e.g. `login`, or `consent:<id>`), so a code for one operation cannot
 * confirm another; it expires, works once, and dies after a few wrong guesses.
 * Only a hash is stored.
 */
export interface OneTimeCodeTable {
  id: string;
  subject: string;
  purpose: string;
  code_hash: string;
  created_at: Date;
  expires_at: Date;
  wrong_attempts: number;
  consumed_at: Date | null;
}

export interface OneTimeCodeTables {
  one_time_codes: OneTimeCodeTable;
}

export async function createOneTimeCodeTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table one_time_codes (
      id text primary key,
      subject text not null,
      purpose text not null,
      code_hash text not null,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      wrong_attempts integer not null default 0,
      consumed_at timestamptz
    )`.execute(db);
  await sql`create index one_time_codes_subject_idx on one_time_codes (subject, purpose, created_at desc)`.execute(
    db,
  );
}

export const CODE_TTL_MS = 5 * 60_000;
export const CODE_DIGITS = 6;
/** Wrong guesses one code survives; the account-wide limiter counts them too. */
export const CODE_MAX_WRONG = 3;
/** A new code may be requested this often (SMS costs money and annoys people). */
export const CODE_RESEND_INTERVAL_MS = 30_000;

export type CodeCheck =
  { ok: true } | { ok: false; reason: 'wrong' | 'expired' | 'missing' | 'exhausted' };

const hashCode = (id: string, code: string) =>
  createHash('sha256').update(`${id}:${code}`).digest('hex');

export function createOneTimeCodes(
  db: Kysely<OneTimeCodeTables>,
  clock: Clock,
  ids: IdGenerator,
  opts: { ttlMs?: number; random?: (max: number) => number } = {},
) {
  const ttlMs = opts.ttlMs ?? CODE_TTL_MS;
  const random = opts.random ?? ((max: number) => randomInt(max));

  return {
    /** Issues a fresh code; earlier unused codes for the same subject and purpose die. */
    async issue(subject: string, purpose: string): Promise<{ code: string; expiresAt: Date }> {
      const now = clock.now();
      const id = ids.uuid();
      const code = String(random(10 ** CODE_DIGITS)).padStart(CODE_DIGITS, '0');
      const expiresAt = new Date(now.getTime() + ttlMs);
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('one_time_codes')
          .set({ consumed_at: now })
          .where('subject', '=', subject)
          .where('purpose', '=', purpose)
          .where('consumed_at', 'is', null)
          .execute();
        await trx
          .insertInto('one_time_codes')
          .values({
            id,
            subject,
            purpose,
            code_hash: hashCode(id, code),
            created_at: now,
            expires_at: expiresAt,
            wrong_attempts: 0,
            consumed_at: null,
          })
          .execute();
      });
      return { code, expiresAt };
    },

    /** Removes codes that expired before `before` (kept until then for investigations). */
    async deleteExpiredBefore(before: Date): Promise<number> {
      const result = await db
        .deleteFrom('one_time_codes')
        .where('expires_at', '<', before)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** When the last code for this subject and purpose was sent, if any. */
    async lastIssuedAt(subject: string, purpose: string): Promise<Date | undefined> {
      const row = await db
        .selectFrom('one_time_codes')
        .select('created_at')
        .where('subject', '=', subject)
        .where('purpose', '=', purpose)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row ? new Date(row.created_at) : undefined;
    },

    /** Checks and, when right, consumes the code in one step: it cannot be used twice. */
    async verify(subject: string, purpose: string, code: string): Promise<CodeCheck> {
      const now = clock.now();
      const row = await db
        .selectFrom('one_time_codes')
        .selectAll()
        .where('subject', '=', subject)
        .where('purpose', '=', purpose)
        .where('consumed_at', 'is', null)
        .orderBy('created_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (!row) return { ok: false, reason: 'missing' };
      if (new Date(row.expires_at).getTime() <= now.getTime())
        return { ok: false, reason: 'expired' };

      const given = Buffer.from(hashCode(row.id, code.trim()));
      if (timingSafeEqual(given, Buffer.from(row.code_hash))) {
        const consumed = await db
          .updateTable('one_time_codes')
          .set({ consumed_at: now })
          .where('id', '=', row.id)
          .where('consumed_at', 'is', null)
          .executeTakeFirst();
        // Two requests racing with the same code: only one consumes it.
        return Number(consumed.numUpdatedRows) === 1
          ? { ok: true }
          : { ok: false, reason: 'missing' };
      }
      const updated = await db
        .updateTable('one_time_codes')
        .set((eb) => ({ wrong_attempts: eb('wrong_attempts', '+', 1) }))
        .where('id', '=', row.id)
        .returning('wrong_attempts')
        .executeTakeFirst();
      if ((updated?.wrong_attempts ?? CODE_MAX_WRONG) >= CODE_MAX_WRONG) {
        await db
          .updateTable('one_time_codes')
          .set({ consumed_at: now })
          .where('id', '=', row.id)
          .execute();
        return { ok: false, reason: 'exhausted' };
      }
      return { ok: false, reason: 'wrong' };
    },
  };
}

export type OneTimeCodes = ReturnType<typeof createOneTimeCodes>;
