import type { Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { randomIds } from '../ids.js';
import {
  CODE_TTL_MS,
  createOneTimeCodeTables,
  createOneTimeCodes,
  type OneTimeCodeTables,
} from './one-time-codes.js';

describeEachEngine('one-time codes', (engine) => {
  let database: FreshDatabase<OneTimeCodeTables>;
  const clock = manualClock('2026-12-01T09:00:00Z');
  let codes: ReturnType<typeof createOneTimeCodes>;

  beforeEach(async () => {
    database = await freshDatabase<OneTimeCodeTables>(engine);
    await createOneTimeCodeTables(database.db as unknown as Kysely<never>);
    codes = createOneTimeCodes(database.db, clock, randomIds);
  });
  afterEach(async () => {
    await database.close();
  });

  const other = (code: string) => (code === '000000' ? '111111' : '000000');

  it('stores only a hash of the code', async () => {
    const { code } = await codes.issue('u1', 'login');
    expect(code).toMatch(/^\d{6}$/);
    const dump = JSON.stringify(
      await database.db.selectFrom('one_time_codes').selectAll().execute(),
    );
    expect(dump).not.toContain(code);
  });

  it('works once, for its own subject and purpose only', async () => {
    const { code } = await codes.issue('u1', 'login');
    expect(await codes.verify('u2', 'login', code)).toEqual({ ok: false, reason: 'missing' });
    expect(await codes.verify('u1', 'consent:42', code)).toEqual({ ok: false, reason: 'missing' });
    expect(await codes.verify('u1', 'login', code)).toEqual({ ok: true });
    expect(await codes.verify('u1', 'login', code)).toEqual({ ok: false, reason: 'missing' });
  });

  it('is consumed by exactly one of two simultaneous requests', async () => {
    const { code } = await codes.issue('u1', 'login');
    const results = await Promise.all([
      codes.verify('u1', 'login', code),
      codes.verify('u1', 'login', code),
      codes.verify('u1', 'login', code),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('expires', async () => {
    const { code } = await codes.issue('u1', 'login');
    clock.advance(CODE_TTL_MS);
    expect(await codes.verify('u1', 'login', code)).toEqual({ ok: false, reason: 'expired' });
  });

  it('dies after three wrong guesses, even if the fourth is right', async () => {
    const { code } = await codes.issue('u1', 'login');
    expect(await codes.verify('u1', 'login', other(code))).toEqual({ ok: false, reason: 'wrong' });
    expect(await codes.verify('u1', 'login', other(code))).toEqual({ ok: false, reason: 'wrong' });
    expect(await codes.verify('u1', 'login', other(code))).toEqual({
      ok: false,
      reason: 'exhausted',
    });
    expect((await codes.verify('u1', 'login', code)).ok).toBe(false);
  });

  it('a new code replaces the previous one', async () => {
    const first = await codes.issue('u1', 'login');
    const second = await codes.issue('u1', 'login');
    if (first.code !== second.code) {
      expect((await codes.verify('u1', 'login', first.code)).ok).toBe(false);
    }
    expect(await codes.verify('u1', 'login', second.code)).toEqual({ ok: true });
  });
});
