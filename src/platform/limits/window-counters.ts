import { Redis } from 'ioredis';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import {
  BurstyRateLimiter,
  RateLimiterMemory,
  RateLimiterPostgres,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';
import type { DatabaseKind } from '../db/index.js';

/**
 * Fixed-window counters for rate limits, on `rate-limiter-flexible`, in a store every
 * instance of a service shares:
 *
 * - Redis, when REDIS_URL is set (one round trip, a Lua script, per count);
 * - otherwise PostgreSQL, when the service runs on it: one atomic upsert per count on the
 *   unlogged table `rate_limit_counters` (counters are worth no WAL; a crash resets them);
 * - otherwise memory: the embedded PGlite database belongs to one process, so there is
 *   only ever one instance to count in, and memory is exact and costs nothing.
 *
 * A key over its limit is refused from memory for the rest of its window (the store
 * already knows it is over), so a flood costs a store round trip only up to the limit.
 * If Redis or PostgreSQL fails, counting goes on in this process's memory (the library's
 * insurance limiter) rather than failing requests: limits then hold per instance until
 * the store is back.
 */
export type CounterStoreKind = 'memory' | 'postgres' | 'redis';

export interface CounterStore {
  readonly kind: CounterStoreKind;
  /** Counters in fixed windows of `windowSeconds`, their keys under `name`. */
  windows(name: string, windowSeconds: number): WindowCounters;
  /**
   * Deletes counter rows whose window ended a minute ago or more (PostgreSQL; a no-op
   * elsewhere). Windows run on real time (the library's), not on an injected clock.
   */
  sweep(): Promise<number>;
  close(): Promise<void>;
}

export interface Take {
  allowed: boolean;
  /** Requests counted in this window so far (0 when refused from memory). */
  count: number;
  /** Until this window ends. */
  retryAfterMs: number;
}

export interface WindowCounters {
  /**
   * Counts one request for `key`; refused once `limit` requests were counted this window,
   * unless `burst` allows more: up to `burst` extra requests within ten windows (a token
   * of slack for a client whose requests bunch up just under the limit).
   */
  take(key: string, limit: number, burst?: number): Promise<Take>;
  /** Adds `points` to `key`'s count for this window and returns the count (no limit; use
   * either `take` or `add` for a key, they count under the same name). */
  add(key: string, points?: number): Promise<number>;
  /** Forgets `key`'s count. */
  reset(key: string): Promise<void>;
}

export interface RateLimitCounterTable {
  key: string;
  points: number;
  /** Epoch milliseconds at which the window ends (int8, read back as a string). */
  expire: string | null;
}

export interface RateLimitCounterTables {
  rate_limit_counters: RateLimitCounterTable;
}

const TABLE = 'rate_limit_counters';

/** The table RateLimiterPostgres writes to: its columns, in its order (it inserts by position). */
export async function createRateLimitCounterTables(db: Kysely<never>): Promise<void> {
  await sql`
    create unlogged table rate_limit_counters (
      key varchar(255) primary key,
      points integer not null default 0,
      expire bigint
    )`.execute(db);
}

export interface OpenCounterStoreOptions {
  /** The service's database engine: PostgreSQL gives a shared store, PGlite a memory one. */
  kind: DatabaseKind;
  db: Kysely<RateLimitCounterTables>;
  /** Takes precedence over the database when set. */
  redisUrl?: string | undefined;
  /** Prefix of every key, e.g. 'soglasie' (RATE_LIMIT_KEY_PREFIX). */
  keyPrefix: string;
  logger: Logger;
}

export async function openCounterStore(opts: OpenCounterStoreOptions): Promise<CounterStore> {
  if (opts.redisUrl) {
    const redis = await connectRedis(opts.redisUrl, opts.logger);
    return counterStore(
      'redis',
      opts.keyPrefix,
      (common) => {
        return new RateLimiterRedis({ ...common, storeClient: redis, rejectIfRedisNotReady: true });
      },
      {
        close: async () => {
          await redis.quit().catch(() => redis.disconnect());
        },
      },
    );
  }
  if (opts.kind === 'postgres') {
    const db = opts.db;
    const storeClient = kyselyPgClient(db);
    return counterStore(
      'postgres',
      opts.keyPrefix,
      (common) =>
        new RateLimiterPostgres({
          ...common,
          storeClient,
          storeType: 'pool',
          tableName: TABLE,
          tableCreated: true,
          // Housekeeping sweeps instead (sweep below): no timers left behind by the library.
          clearExpiredByTimeout: false,
        }),
      {
        sweep: async () => {
          const result = await db
            .deleteFrom(TABLE)
            .where('expire', '<', String(Date.now() - 60_000))
            .executeTakeFirst();
          return Number(result.numDeletedRows);
        },
      },
    );
  }
  return counterStore('memory', opts.keyPrefix, undefined, {});
}

interface CommonOptions {
  keyPrefix: string;
  points: number;
  duration: number;
  inMemoryBlockOnConsumed: number;
  insuranceLimiter: RateLimiterMemory;
}

function counterStore(
  kind: CounterStoreKind,
  keyPrefix: string,
  makeStoreLimiter: ((common: CommonOptions) => RateLimiterAbstract) | undefined,
  extra: { sweep?: () => Promise<number>; close?: () => Promise<void> },
): CounterStore {
  const limiter = (name: string, points: number, duration: number): RateLimiterAbstract => {
    const prefix = `${keyPrefix}:rl:${name}`;
    const memory = new RateLimiterMemory({ keyPrefix: prefix, points, duration });
    if (!makeStoreLimiter) return memory;
    return makeStoreLimiter({
      keyPrefix: prefix,
      points,
      duration,
      // Once a key reaches its limit, the rest of its window is refused from memory.
      inMemoryBlockOnConsumed: points,
      insuranceLimiter: memory,
    });
  };

  return {
    kind,
    windows(name, windowSeconds) {
      // One limiter per distinct limit (partners may have their own); they share keys.
      const byLimit = new Map<number, RateLimiterAbstract>();
      const limited = (limit: number) => {
        let found = byLimit.get(limit);
        if (!found) byLimit.set(limit, (found = limiter(name, limit, windowSeconds)));
        return found;
      };
      // The burst allowance: a second count over ten windows, asked only beyond the limit.
      const byBurst = new Map<number, RateLimiterAbstract>();
      const bursts = new Map<string, BurstyRateLimiter>();
      const bursty = (limit: number, burst: number) => {
        const id = `${limit}/${burst}`;
        let found = bursts.get(id);
        if (!found) {
          let extra = byBurst.get(burst);
          if (!extra)
            byBurst.set(burst, (extra = limiter(`${name}:burst`, burst, windowSeconds * 10)));
          bursts.set(id, (found = new BurstyRateLimiter(limited(limit), extra)));
        }
        return found;
      };
      // Counting without a limit: `penalty` adds and never refuses.
      const counting = limiter(`${name}`, Number.MAX_SAFE_INTEGER, windowSeconds);
      return {
        async take(key, limit, burst = 0) {
          try {
            const res = await (burst > 0 ? bursty(limit, burst) : limited(limit)).consume(key);
            return { allowed: true, count: res.consumedPoints, retryAfterMs: res.msBeforeNext };
          } catch (err) {
            if (!(err instanceof RateLimiterRes)) throw err;
            return {
              allowed: false,
              count: err.consumedPoints,
              retryAfterMs: Math.max(0, err.msBeforeNext),
            };
          }
        },
        async add(key, points = 1) {
          return (await counting.penalty(key, points)).consumedPoints;
        },
        async reset(key) {
          await counting.delete(key);
          // Also the in-memory refusals of every limit, and their memory fallbacks.
          for (const l of [...byLimit.values(), ...byBurst.values()]) await l.delete(key);
        },
      };
    },
    sweep: extra.sweep ?? (async () => 0),
    close: extra.close ?? (async () => {}),
  };
}

/**
 * What RateLimiterPostgres needs of a `pg` pool (`query({ text, values })` → rows and
 * rowCount), answered by the service's own Kysely connection: no second pool to size.
 */
function kyselyPgClient(db: Kysely<RateLimitCounterTables>) {
  return {
    async query(q: { text: string; values?: unknown[] }) {
      const result = await db.executeQuery(CompiledQuery.raw(q.text, q.values ?? []));
      return {
        rows: result.rows,
        rowCount: Number(result.numAffectedRows ?? BigInt(result.rows.length)),
      };
    },
  };
}

/** Connects at start (a wrong REDIS_URL should stop the service, not every request). */
async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    // Counting must never wait for a reconnect: when Redis is away, the memory fallback counts.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5_000,
  });
  let lastWarning = 0;
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
    // ioredis retries on its own; say so now and then, not on every attempt.
    if (Date.now() - lastWarning < 30_000) return;
    lastWarning = Date.now();
    logger.warn(
      { err: err.message },
      'Redis (rate-limit counters) unreachable; counting in memory per instance until it is back',
    );
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    const { hostname, port } = new URL(url);
    const reason = (lastError ?? (err as Error)).message.replace(/\.$/, '');
    throw new Error(
      `Cannot reach Redis at ${hostname}:${port || 6379} for the rate-limit counters (${reason}). Check REDIS_URL.`,
      { cause: err },
    );
  }
  return redis;
}
