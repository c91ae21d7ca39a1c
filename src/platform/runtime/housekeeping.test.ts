import type { Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { createSessionStore, type SessionTables } from '../http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../limits/attempt-limiter.js';
import { randomIds } from '../ids.js';
import { createOneTimeCodes, type OneTimeCodeTables } from '../otp/one-time-codes.js';
import { startHousekeeping, sweepExpired } from './housekeeping.js';
import { platformMigration } from './platform-migrations.js';

type Tables = SessionTables & OneTimeCodeTables & AttemptTables;

describeEachEngine('housekeeping', (engine) => {
  let database: FreshDatabase<Tables>;
  const clock = manualClock('2026-12-01T09:00:00Z');

  beforeEach(async () => {
    database = await freshDatabase<Tables>(engine);
    await platformMigration.up(database.db as unknown as Kysely<never>);
  });
  afterEach(async () => {
    await database.close();
  });

  it('removes expired sessions, old codes and stale counters, and keeps live ones', async () => {
    const sessions = createSessionStore(database.db);
    const start = clock.now();
    const session = (id: string, minutes: number) =>
      sessions.insert({
        id,
        csrfToken: 'c',
        userId: null,
        data: {},
        createdAt: start,
        expiresAt: new Date(start.getTime() + minutes * 60_000),
      });
    await session('old', 1);
    await session('live', 60 * 48);
    const codes = createOneTimeCodes(database.db, clock, randomIds);
    await codes.issue('u1', 'login');
    const limiter = createAttemptLimiter(database.db, clock);
    await limiter.recordFailure('account:u1');

    clock.advance(25 * 60 * 60_000);
    await codes.issue('u2', 'login');
    expect(await sweepExpired(database.db, clock.now())).toEqual({
      sessions: 1,
      codes: 1,
      counters: 1,
    });
    expect(await sessions.find('live', clock.now())).toBeDefined();
    expect(await codes.lastIssuedAt('u2', 'login')).toBeDefined();
  });

  it("the timer runs the service's own sweep too (the portal's consent expiry depends on it)", async () => {
    const seen: Date[] = [];
    const logged: unknown[] = [];
    const stop = startHousekeeping({
      db: database.db,
      clock,
      logger: { debug: (o: unknown) => logged.push(o), warn: () => undefined } as never,
      intervalMs: 20,
      extra: async (now) => {
        seen.push(now);
        return { consents: 2 };
      },
    });
    try {
      await vi.waitFor(() => expect(logged.length).toBeGreaterThan(0), { timeout: 5_000 });
      expect(seen[0]?.toISOString()).toBe(clock.now().toISOString());
      expect(logged[0]).toMatchObject({ removed: { consents: 2, sessions: 0 } });
    } finally {
      stop();
    }
  });
});
