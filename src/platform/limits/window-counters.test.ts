import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachEngine, freshDatabase } from '../../../test/support/databases.js';
import { migrateToLatest, openDatabase, type Database } from '../db/index.js';
import {
  createRateLimitCounterTables,
  openCounterStore,
  type CounterStore,
  type RateLimitCounterTables,
} from './window-counters.js';

const logger = pino({ level: 'silent' });
/** Long windows: no test runs into a window's end (no timed assertions). */
const WINDOW_S = 300;

const migrations = {
  '0001_counters': { up: (db: Kysely<never>) => createRateLimitCounterTables(db) },
};

/** What every store must do; `second` is another instance on the same shared store. */
function behaves(
  open: () => Promise<{ one: CounterStore; two?: CounterStore | undefined }>,
  shared: boolean,
) {
  let one: CounterStore;
  let two: CounterStore | undefined;
  beforeAll(async () => {
    ({ one, two } = await open());
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  it('admits up to the limit in a window, then refuses until the window ends', async () => {
    const counters = one.windows('t1', WINDOW_S);
    const takes = [];
    for (let i = 0; i < 5; i++) takes.push(await counters.take('partner:a', 3));
    expect(takes.map((t) => t.allowed)).toEqual([true, true, true, false, false]);
    expect(takes.slice(0, 3).map((t) => t.count)).toEqual([1, 2, 3]);
    for (const refused of takes.slice(3)) {
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(WINDOW_S * 1000);
    }
  });

  it('keeps keys apart: one key over its limit leaves another untouched', async () => {
    const counters = one.windows('t2', WINDOW_S);
    for (let i = 0; i < 10; i++) await counters.take('partner:flood', 2);
    expect((await counters.take('partner:quiet', 2)).allowed).toBe(true);
    expect((await counters.take('partner:quiet', 2)).allowed).toBe(true);
    expect((await counters.take('partner:quiet', 2)).allowed).toBe(false);
    // Names keep counters apart too.
    expect((await one.windows('t2-other', WINDOW_S).take('partner:flood', 2)).allowed).toBe(true);
  });

  it('honours a different limit for the same key (a partner given its own)', async () => {
    const counters = one.windows('t3', WINDOW_S);
    for (let i = 0; i < 3; i++) expect((await counters.take('k', 3)).allowed).toBe(true);
    expect((await counters.take('k', 3)).allowed).toBe(false);
    // Raised: the same window's count goes on against the new limit.
    expect((await counters.take('k', 10)).allowed).toBe(true);
  });

  it('allows a burst over the limit once per ten windows', async () => {
    const counters = one.windows('t6', WINDOW_S);
    const take = (key: string) => counters.take(key, 4, 2);
    const allowed = [];
    for (let i = 0; i < 8; i++) allowed.push((await take('partner:b')).allowed);
    // Four, then two from the allowance, then nothing until the windows end.
    expect(allowed).toEqual([true, true, true, true, true, true, false, false]);
    const refused = await take('partner:b');
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(WINDOW_S * 1000);
    // Its own per key, and forgotten on reset.
    expect((await take('partner:c')).allowed).toBe(true);
    await counters.reset('partner:b');
    for (let i = 0; i < 6; i++) expect((await take('partner:b')).allowed).toBe(true);
    expect((await take('partner:b')).allowed).toBe(false);
  });

  it('adds without a limit, and forgets a key on reset', async () => {
    const counters = one.windows('t4', WINDOW_S);
    expect(await counters.add('ip:1')).toBe(1);
    expect(await counters.add('ip:1', 4)).toBe(5);
    expect(await counters.add('ip:2')).toBe(1);
    await counters.reset('ip:1');
    expect(await counters.add('ip:1')).toBe(1);

    for (let i = 0; i < 3; i++) await counters.take('p', 2);
    expect((await counters.take('p', 2)).allowed).toBe(false);
    await counters.reset('p');
    expect((await counters.take('p', 2)).allowed).toBe(true);
  });

  // Memory serves one process: there is no second instance to share with.
  if (!shared) return;
  it('shares one count between instances on the same store', async () => {
    const a = one.windows('t5', WINDOW_S);
    const b = two!.windows('t5', WINDOW_S);
    const allowed: boolean[] = [];
    for (let i = 0; i < 8; i++) allowed.push((await (i % 2 ? b : a).take('partner:x', 5)).allowed);
    expect(allowed.filter(Boolean)).toHaveLength(5);
    expect(allowed.slice(5)).toEqual([false, false, false]);
    // Concurrent takes from both: still exactly the limit, the store counts atomically.
    const burst = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? b : a).take('partner:y', 17)),
    );
    expect(burst.filter((t) => t.allowed)).toHaveLength(17);
    expect(await a.add('ip:z')).toBe(1);
    expect(await b.add('ip:z')).toBe(2);
  });
}

describeEachEngine('window counters', (engine) => {
  let database: Database<RateLimitCounterTables> & { url?: string };
  let second: Database<RateLimitCounterTables> | undefined;
  beforeAll(async () => {
    database = await freshDatabase<RateLimitCounterTables>(engine);
    await migrateToLatest(database, migrations);
    if (database.url) {
      second = await openDatabase({ name: 'second', url: database.url, poolSize: 2 });
    }
  });
  afterAll(async () => {
    await second?.close();
    await database?.close();
  });

  const store = (db: Database<RateLimitCounterTables>) =>
    openCounterStore({ kind: db.kind, db: db.db, keyPrefix: 'test', logger });

  it('picks the store by engine: PostgreSQL shared, embedded PGlite in memory', async () => {
    const s = await store(database);
    expect(s.kind).toBe(engine.name === 'postgres' ? 'postgres' : 'memory');
    await s.close();
  });

  behaves(
    async () => ({ one: await store(database), two: second ? await store(second) : undefined }),
    engine.name === 'postgres',
  );
});

describe.runIf(process.env.TEST_DATABASE_URL)('window counters on PostgreSQL', () => {
  let database: Database<RateLimitCounterTables>;
  beforeAll(async () => {
    database = await freshDatabase<RateLimitCounterTables>({ name: 'postgres' });
    await migrateToLatest(database, migrations);
  });
  afterAll(() => database?.close());

  it('sweeps the rows of ended windows', async () => {
    const s = await openCounterStore({
      kind: database.kind,
      db: database.db,
      keyPrefix: 'test',
      logger,
    });
    await s.windows('sweep', WINDOW_S).take('old', 5);
    await s.windows('sweep', WINDOW_S).take('new', 5);
    // The old one's window ended two minutes ago.
    await database.db
      .updateTable('rate_limit_counters')
      .set({ expire: String(Date.now() - 120_000) })
      .where('key', '=', 'test:rl:sweep:old')
      .execute();
    expect(await s.sweep()).toBe(1);
    const keys = (await database.db.selectFrom('rate_limit_counters').select('key').execute()).map(
      (r) => r.key,
    );
    expect(keys).toContain('test:rl:sweep:new');
    expect(keys).not.toContain('test:rl:sweep:old');
    await s.close();
  });
});

describe('window counters when the shared store fails', () => {
  it('go on counting in memory (per instance) instead of failing requests', async () => {
    const broken = {
      executeQuery: () => Promise.reject(new Error('connection refused')),
    } as unknown as Kysely<RateLimitCounterTables>;
    const s = await openCounterStore({ kind: 'postgres', db: broken, keyPrefix: 'x', logger });
    const counters = s.windows('t', WINDOW_S);
    const takes = [];
    for (let i = 0; i < 3; i++) takes.push((await counters.take('k', 2)).allowed);
    expect(takes).toEqual([true, true, false]);
    await s.close();
  });
});

describe.runIf(process.env.TEST_REDIS_URL)('window counters on Redis', () => {
  const url = process.env.TEST_REDIS_URL!;
  // Unique per run, and removed at the end: other runs and data in that Redis stay apart.
  const prefix = `soglasie-test-${randomBytes(6).toString('hex')}`;
  const open = () =>
    openCounterStore({
      kind: 'pglite',
      db: undefined as never,
      redisUrl: url,
      keyPrefix: prefix,
      logger,
    });

  afterAll(async () => {
    const redis = new Redis(url);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('uses Redis when REDIS_URL is set, whatever the database', async () => {
    const s = await open();
    expect(s.kind).toBe('redis');
    await s.close();
  });

  behaves(async () => ({ one: await open(), two: await open() }), true);

  it('refuses to start with a Redis it cannot reach, naming REDIS_URL', async () => {
    await expect(
      openCounterStore({
        kind: 'pglite',
        db: undefined as never,
        redisUrl: 'redis://127.0.0.1:1',
        keyPrefix: prefix,
        logger,
      }),
    ).rejects.toThrow(/Cannot reach Redis at 127\.0\.0\.1:1 .*REDIS_URL/);
  });
});
