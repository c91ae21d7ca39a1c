import { sql, type Kysely } from 'kysely';
import type { Clock } from '../clock.js';
import { TooManyAttemptsError } from '../http/errors.js';

/**
 * Failed-attempt counters kept in the database, so every instance and every session of
 * an account share one count: five wrong passwords or codes lock the account for a
 * while, whichever browser they came from.
 */
export interface AttemptCounterTable {
  key: string;
  failures: number;
  window_started_at: Date;
  locked_until: Date | null;
}

export interface AttemptTables {
  attempt_counters: AttemptCounterTable;
}

export async function createAttemptTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table attempt_counters (
      key text primary key,
      failures integer not null,
      window_started_at timestamptz not null,
      locked_until timestamptz
    )`.execute(db);
}

export interface AttemptLimits {
  /** Failures allowed within the window before a lock. */
  maxFailures: number;
  windowMs: number;
  lockMs: number;
}

/** OWASP ASVS 2.2.1 asks for a limit; 5 failures in 15 min → 15 min lock. */
export const LOGIN_LIMITS: AttemptLimits = {
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
};

/**
 * Failures from one client address, whichever accounts they were against: a password
 * spray (one password tried on many accounts) never trips a per-account lock, this does.
 * Generous enough for many people behind one NAT: 30 failures in 15 min → 15 min lock.
 */
export const IP_LOGIN_LIMITS: AttemptLimits = {
  maxFailures: 30,
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
};

export interface AttemptLimiter {
  /** Throws TooManyAttemptsError while `key` is locked. */
  assertAllowed(key: string): Promise<void>;
  /** Counts one failure; reports whether this failure caused a lock. */
  recordFailure(key: string): Promise<{ failures: number; locked: boolean }>;
  /** Drops counters whose window began before `before` and that lock nothing now. */
  forgetStale(before: Date): Promise<number>;
  reset(key: string): Promise<void>;
  /** The same counters (same table) under other limits, e.g. per client address. */
  withLimits(limits: AttemptLimits): AttemptLimiter;
}

export function createAttemptLimiter(
  db: Kysely<AttemptTables>,
  clock: Clock,
  limits: AttemptLimits = LOGIN_LIMITS,
): AttemptLimiter {
  return {
    /** Throws TooManyAttemptsError while `key` is locked. */
    async assertAllowed(key: string): Promise<void> {
      const row = await db
        .selectFrom('attempt_counters')
        .select('locked_until')
        .where('key', '=', key)
        .executeTakeFirst();
      const now = clock.now().getTime();
      if (row?.locked_until && new Date(row.locked_until).getTime() > now) {
        throw new TooManyAttemptsError(
          Math.ceil((new Date(row.locked_until).getTime() - now) / 1000),
        );
      }
    },

    /**
     * Counts one failure in a single atomic statement (no read-modify-write race between
     * instances) and reports whether this failure caused a lock.
     */
    async recordFailure(key: string): Promise<{ failures: number; locked: boolean }> {
      const now = clock.now();
      const windowStart = new Date(now.getTime() - limits.windowMs);
      const lockUntil = new Date(now.getTime() + limits.lockMs);
      const result = await sql<{ failures: number; locked_until: Date | null }>`
        insert into attempt_counters as c (key, failures, window_started_at, locked_until)
        values (${key}, 1, ${now}, ${limits.maxFailures <= 1 ? lockUntil : null})
        on conflict (key) do update set
          failures = case when c.window_started_at < ${windowStart} then 1 else c.failures + 1 end,
          window_started_at = case when c.window_started_at < ${windowStart} then ${now} else c.window_started_at end,
          locked_until = case
            when (case when c.window_started_at < ${windowStart} then 1 else c.failures + 1 end) >= ${limits.maxFailures}
            then ${lockUntil}::timestamptz else c.locked_until end
        returning failures, locked_until`.execute(db);
      const row = result.rows[0]!;
      return { failures: row.failures, locked: row.failures >= limits.maxFailures };
    },

    /** Drops counters whose window began before `before` and that lock nothing now. */
    async forgetStale(before: Date): Promise<number> {
      const now = clock.now();
      const result = await db
        .deleteFrom('attempt_counters')
        .where('window_started_at', '<', before)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async reset(key: string): Promise<void> {
      await db.deleteFrom('attempt_counters').where('key', '=', key).execute();
    },

    withLimits(other: AttemptLimits): AttemptLimiter {
      return createAttemptLimiter(db, clock, other);
    },
  };
}
