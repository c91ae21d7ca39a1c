import type { Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { openDatabase } from '../db/index.js';
import { TooManyAttemptsError } from '../http/errors.js';
import {
  createAttemptLimiter,
  createAttemptTables,
  type AttemptTables,
} from './attempt-limiter.js';

describeEachEngine('attempt limiter', (engine) => {
  let database: FreshDatabase<AttemptTables>;
  const clock = manualClock('2026-12-01T09:00:00Z');

  beforeEach(async () => {
    database = await freshDatabase<AttemptTables>(engine);
    await createAttemptTables(database.db as unknown as Kysely<never>);
  });
  afterEach(async () => {
    await database.close();
  });

  it('locks after the fifth failure and unlocks when the lock ends', async () => {
    const limiter = createAttemptLimiter(database.db, clock);
    for (let i = 1; i <= 4; i++) {
      expect(await limiter.recordFailure('account:a')).toEqual({ failures: i, locked: false });
    }
    await limiter.assertAllowed('account:a');
    expect((await limiter.recordFailure('account:a')).locked).toBe(true);
    const err = await limiter.assertAllowed('account:a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManyAttemptsError);
    expect((err as TooManyAttemptsError).retryAfterSeconds).toBe(15 * 60);
    await limiter.assertAllowed('account:b'); // others are not affected

    clock.advance(15 * 60_000);
    await limiter.assertAllowed('account:a');
  });

  it('forgets failures older than the window', async () => {
    const limiter = createAttemptLimiter(database.db, clock);
    for (let i = 0; i < 4; i++) await limiter.recordFailure('k');
    clock.advance(16 * 60_000);
    expect(await limiter.recordFailure('k')).toEqual({ failures: 1, locked: false });
  });

  it('counts exactly when two instances record failures at once', async () => {
    // On PostgreSQL the second limiter uses its own connection pool, as a second instance would.
    const second =
      engine.name === 'postgres' && database.url
        ? await openDatabase<AttemptTables>({ name: 'second', url: database.url })
        : undefined;
    try {
      const a = createAttemptLimiter(database.db, clock);
      const b = createAttemptLimiter((second ?? database).db, clock);
      await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).recordFailure('shared')),
      );
      const row = await database.db
        .selectFrom('attempt_counters')
        .select('failures')
        .where('key', '=', 'shared')
        .executeTakeFirstOrThrow();
      expect(row.failures).toBe(40);
    } finally {
      await second?.close();
    }
  });
});
