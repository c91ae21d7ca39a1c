import { performance } from 'node:perf_hooks';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import type { Clock } from '../../platform/clock.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { WindowCounters } from '../../platform/limits/window-counters.js';
import type { IpBlockStore, IpBlockTable } from './ip-block.store.js';

/**
 * Source IPs blocked for a while (J11): after sustained excess over the partner API's
 * rate limit (`blockAfter` refusals within `windowSeconds`), for `blockSeconds`, unless a
 * security analyst lifts the block sooner. Blocks live in the database, so every instance
 * honours them; each instance keeps its answer for an address for `cacheMs` (1 s), so a
 * blocked flood costs a map lookup, and a block made or lifted elsewhere reaches it within
 * that time (at once on the instance that made or lifted it). Blocking and lifting are
 * audited, the block named by its id.
 */
export interface IpBlockPolicy {
  blockAfter: number;
  windowSeconds: number;
  blockSeconds: number;
}

export interface ActiveBlock {
  id: string;
  until: Date;
}

/** Counts refusals per address, in the shared counter store. */
export type RefusalCounters = Pick<WindowCounters, 'add' | 'reset'>;

export interface IpBlockServiceDeps {
  store: IpBlockStore;
  refusals: RefusalCounters;
  audit: Pick<AuditLog, 'append'>;
  clock: Clock;
  ids: IdGenerator;
  policy: IpBlockPolicy;
  /** How long an instance trusts its answer for an address; default 1000 ms. */
  cacheMs?: number;
}

const CACHE_MAX = 10_000;

export function createIpBlockService(deps: IpBlockServiceDeps) {
  const cacheMs = deps.cacheMs ?? 1000;
  /** Per address: when it was looked up (monotonic ms) and the block found, if any. */
  const cache = new Map<string, { at: number; block: Promise<ActiveBlock | null> }>();

  const remember = (ip: string, block: Promise<ActiveBlock | null>) => {
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(ip, { at: performance.now(), block });
  };
  const inForce = (block: ActiveBlock | null) =>
    block && block.until.getTime() > deps.clock.now().getTime() ? block : undefined;

  async function block(input: {
    ip: string;
    reason: string;
    source: string;
    clientId?: string | undefined;
    seconds?: number;
  }): Promise<{ block: IpBlockTable; created: boolean }> {
    const now = deps.clock.now();
    const seconds = input.seconds ?? deps.policy.blockSeconds;
    const result = await deps.store.open({
      id: deps.ids.uuid(),
      ip: input.ip,
      reason: input.reason,
      source: input.source,
      client_id: input.clientId ?? null,
      blocked_at: now,
      blocked_until: new Date(now.getTime() + seconds * 1000),
    });
    remember(
      input.ip,
      Promise.resolve({ id: result.block.id, until: new Date(result.block.blocked_until) }),
    );
    if (result.created) {
      await deps.audit.append({
        actor: `system:${input.source}`,
        action: 'ip.blocked',
        subject: `ip-block:${result.block.id}`,
        details: {
          source: input.source,
          until: new Date(result.block.blocked_until).toISOString(),
          ...(input.clientId ? { client: input.clientId } : {}),
        },
      });
    }
    return result;
  }

  return {
    /** The block in force for `ip`, if any (cached per instance, see above). */
    async active(ip: string): Promise<ActiveBlock | undefined> {
      const cached = cache.get(ip);
      if (cached && performance.now() - cached.at < cacheMs) return inForce(await cached.block);
      const lookup = deps.store
        .activeFor(ip, deps.clock.now())
        .then((row) => (row ? { id: row.id, until: new Date(row.blocked_until) } : null));
      // Concurrent requests from one address share one query.
      remember(ip, lookup);
      try {
        return inForce(await lookup);
      } catch (err) {
        cache.delete(ip);
        throw err;
      }
    },

    /**
     * Counts one refusal (429) for `ip`; at `blockAfter` within the window the address is
     * blocked. Returns the block in force when there is one.
     */
    async recordRefusal(ip: string, clientId?: string): Promise<ActiveBlock | undefined> {
      const refusals = await deps.refusals.add(ip);
      if (refusals < deps.policy.blockAfter) return undefined;
      const { policy } = deps;
      const { block: row } = await block({
        ip,
        source: 'rate_limit',
        clientId,
        reason: `Постоянное превышение лимита запросов: ${policy.blockAfter} отказов (429) за ${policy.windowSeconds} с`,
      });
      return { id: row.id, until: new Date(row.blocked_until) };
    },

    block,

    /** Blocks in force now, newest first. */
    listActive: () => deps.store.listActive(deps.clock.now()),

    /**
     * An analyst lifts a block: it ends at once on this instance (within `cacheMs` on the
     * others), the refusals counted so far are forgotten, and the lifting is audited.
     * Undefined when the block is no longer in force.
     */
    async lift(id: string, analystId: string): Promise<IpBlockTable | undefined> {
      const row = await deps.store.lift(id, analystId, deps.clock.now());
      if (!row) return undefined;
      cache.delete(row.ip);
      await deps.refusals.reset(row.ip);
      await deps.audit.append({
        actor: `citizen:${analystId}`,
        action: 'ip.unblocked',
        subject: `ip-block:${row.id}`,
        details: { source: row.source, ...(row.client_id ? { client: row.client_id } : {}) },
      });
      return row;
    },
  };
}

export type IpBlockService = ReturnType<typeof createIpBlockService>;
