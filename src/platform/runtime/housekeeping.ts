import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { createSessionStore, type SessionTables } from '../http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../limits/attempt-limiter.js';
import { createOneTimeCodes, type OneTimeCodeTables } from '../otp/one-time-codes.js';
import { randomIds } from '../ids.js';

type HousekeepingTables = SessionTables & OneTimeCodeTables & AttemptTables;

/** Used and expired codes are kept a day for investigations, then removed. */
const CODE_RETENTION_MS = 24 * 60 * 60_000;

/**
 * Removes what has expired: sessions, one-time codes, stale attempt counters. Deletes
 * are idempotent, so any number of instances can run this against one database.
 */
export async function sweepExpired(db: Kysely<HousekeepingTables>, now: Date) {
  const kept = new Date(now.getTime() - CODE_RETENTION_MS);
  const fixedNow = { now: () => now };
  return {
    sessions: await createSessionStore(db).deleteExpired(now),
    codes: await createOneTimeCodes(db, fixedNow, randomIds).deleteExpiredBefore(kept),
    counters: await createAttemptLimiter(db, fixedNow).forgetStale(kept),
  };
}

/**
 * Runs sweepExpired and the service's own `extra` sweep (consent expiry, J1 timeouts,
 * overdue deletion receipts on the portal) every `intervalMs`; returns a stop function.
 */
export function startHousekeeping(opts: {
  db: Kysely<HousekeepingTables>;
  clock: Clock;
  logger: Logger;
  intervalMs?: number;
  /** A service's own expired rows (e.g. the portal's OIDC artefacts). */
  extra?: (now: Date) => Promise<Record<string, number>>;
}): () => void {
  let running = false;
  const timer = setInterval(
    () => {
      if (running) return;
      running = true;
      const now = opts.clock.now();
      sweepExpired(opts.db, now)
        .then(async (removed) => ({ ...removed, ...(await opts.extra?.(now)) }))
        .then((removed) => opts.logger.debug({ removed }, 'housekeeping'))
        .catch((err: unknown) => opts.logger.warn({ err }, 'housekeeping failed'))
        .finally(() => {
          running = false;
        });
    },
    // Every minute: an expired consent reads «Истёк срок» and its partner hears of it soon
    // after its end (reads are refused from the exact end regardless).
    opts.intervalMs ?? 60_000,
  );
  timer.unref();
  return () => clearInterval(timer);
}
