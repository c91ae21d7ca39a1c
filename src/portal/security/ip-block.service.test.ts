import type { Kysely } from 'kysely';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { createAuditLog, type AuditTables } from '../../platform/audit/audit-log.js';
import { manualClock } from '../../platform/clock.js';
import { migrateToLatest, openDatabase, type Database } from '../../platform/db/index.js';
import { randomIds } from '../../platform/ids.js';
import type { PortalDB } from '../db.js';
import { portalMigrations } from '../migrations.js';
import { createIpBlockService, type RefusalCounters } from './ip-block.service.js';
import { createIpBlockStore, type IpBlockTables } from './ip-block.store.js';

const POLICY = { blockAfter: 3, windowSeconds: 60, blockSeconds: 600 };

/** Refusal counts as the shared counter store keeps them (one map for every instance). */
function sharedRefusals(): RefusalCounters & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return {
    counts,
    add: async (key, points = 1) => {
      counts.set(key, (counts.get(key) ?? 0) + points);
      return counts.get(key)!;
    },
    reset: async (key) => {
      counts.delete(key);
    },
  };
}

describeEachEngine('IP blocks', (engine) => {
  let database: FreshDatabase<PortalDB>;
  let clock: ReturnType<typeof manualClock>;
  let refusals: ReturnType<typeof sharedRefusals>;

  const service = (db: Kysely<PortalDB>, cacheMs?: number) =>
    createIpBlockService({
      store: createIpBlockStore(db as unknown as Kysely<IpBlockTables>),
      refusals,
      audit: createAuditLog(db as unknown as Kysely<AuditTables>, clock),
      clock,
      ids: randomIds,
      policy: POLICY,
      cacheMs,
    });
  const auditOf = (action: string) =>
    createAuditLog(database.db as unknown as Kysely<AuditTables>, clock).list({ action });

  beforeAll(async () => {
    database = await freshDatabase<PortalDB>(engine);
    await migrateToLatest(database, portalMigrations);
  });
  afterAll(() => database?.close());
  beforeEach(() => {
    clock = manualClock('2026-12-01T09:00:00Z');
    refusals = sharedRefusals();
  });

  it('blocks an address at the configured number of refusals, audited once', async () => {
    const blocks = service(database.db);
    expect(await blocks.recordRefusal('203.0.113.1', 'partner-a')).toBeUndefined();
    expect(await blocks.recordRefusal('203.0.113.1', 'partner-a')).toBeUndefined();
    expect(await blocks.active('203.0.113.1')).toBeUndefined();

    const block = await blocks.recordRefusal('203.0.113.1', 'partner-a');
    expect(block?.until).toEqual(new Date('2026-12-01T09:10:00Z'));
    expect(await blocks.active('203.0.113.1')).toEqual(block);
    // Other addresses are not touched.
    expect(await blocks.active('203.0.113.2')).toBeUndefined();

    // Refusals counted elsewhere meanwhile: the same block, not a second one.
    expect(await blocks.recordRefusal('203.0.113.1', 'partner-a')).toEqual(block);
    const listed = await blocks.listActive();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      id: block!.id,
      ip: '203.0.113.1',
      source: 'rate_limit',
      client_id: 'partner-a',
      reason: expect.stringContaining('3 отказов (429) за 60 с'),
    });

    const audited = await auditOf('ip.blocked');
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      actor: 'system:rate_limit',
      subject: `ip-block:${block!.id}`,
      details: { source: 'rate_limit', client: 'partner-a', until: '2026-12-01T09:10:00.000Z' },
    });
    // The audit log names the block, not the address.
    expect(JSON.stringify(audited[0])).not.toContain('203.0.113.1');

    await blocks.lift(block!.id, 'cleanup');
  });

  it('ends by itself at its time; the next block of the address starts afresh', async () => {
    const blocks = service(database.db);
    for (let i = 0; i < 3; i++) await blocks.recordRefusal('198.51.100.7');
    const first = await blocks.active('198.51.100.7');
    expect(first).toBeDefined();

    clock.advance(POLICY.blockSeconds * 1000);
    expect(await blocks.active('198.51.100.7')).toBeUndefined();
    expect(await blocks.listActive()).toEqual([]);

    await refusals.reset('198.51.100.7');
    for (let i = 0; i < 3; i++) await blocks.recordRefusal('198.51.100.7');
    const second = await blocks.active('198.51.100.7');
    expect(second?.id).not.toBe(first!.id);
    // The expired row is history, closed at its end.
    const rows = await database.db
      .selectFrom('ip_blocks')
      .selectAll()
      .where('ip', '=', '198.51.100.7')
      .orderBy('blocked_at')
      .execute();
    expect(rows.map((r) => [r.id, r.ended_at])).toEqual([
      [first!.id, new Date('2026-12-01T09:10:00Z')],
      [second!.id, null],
    ]);
    await blocks.lift(second!.id, 'cleanup');
  });

  it('lifts a block: in force no more, refusals forgotten, audited with the analyst', async () => {
    const blocks = service(database.db);
    for (let i = 0; i < 3; i++) await blocks.recordRefusal('192.0.2.10', 'partner-b');
    const block = (await blocks.active('192.0.2.10'))!;

    const lifted = await blocks.lift(block.id, 'analyst-1');
    expect(lifted).toMatchObject({ ip: '192.0.2.10', lifted_by: 'analyst-1' });
    expect(await blocks.active('192.0.2.10')).toBeUndefined();
    expect(refusals.counts.has('192.0.2.10')).toBe(false);
    // The next refusal starts a new count, not an instant re-block.
    expect(await blocks.recordRefusal('192.0.2.10')).toBeUndefined();
    // Twice: nothing left to lift.
    expect(await blocks.lift(block.id, 'analyst-1')).toBeUndefined();

    const audited = await auditOf('ip.unblocked');
    expect(audited.find((e) => e.subject === `ip-block:${block.id}`)).toMatchObject({
      actor: 'citizen:analyst-1',
      details: { source: 'rate_limit', client: 'partner-b' },
    });
  });

  it('is honoured by every instance on the database, within the cache time', async () => {
    const second: Database<PortalDB> =
      engine.name === 'postgres'
        ? await openDatabase<PortalDB>({ name: 'second', url: database.url!, poolSize: 2 })
        : database;
    try {
      // A caches "not blocked" for an address; B blocks it; A sees it once its cache
      // lapses (1 s by default; 0 here so the test needs no waiting).
      const a = service(database.db, 0);
      const b = service(second.db, 0);
      expect(await a.active('203.0.113.50')).toBeUndefined();
      for (let i = 0; i < 3; i++) await b.recordRefusal('203.0.113.50');
      const block = await a.active('203.0.113.50');
      expect(block).toBeDefined();
      await a.lift(block!.id, 'analyst-1');
      expect(await b.active('203.0.113.50')).toBeUndefined();

      // With the default cache an instance keeps its answer for a moment: a flood from a
      // blocked address is answered from memory.
      const cached = service(database.db);
      for (let i = 0; i < 3; i++) await b.recordRefusal('203.0.113.51');
      expect(await cached.active('203.0.113.51')).toBeDefined();
      const blockId = (await b.active('203.0.113.51'))!.id;
      await b.lift(blockId, 'analyst-1');
      expect(await cached.active('203.0.113.51')).toBeDefined(); // within its second
    } finally {
      if (second !== database) await second.close();
    }
  });

  it('keeps one open block per address even when instances race', async () => {
    const blocks = service(database.db);
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        blocks.block({ ip: '203.0.113.99', reason: 'test', source: 'test', seconds: 60 }),
      ),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.block.id)).size).toBe(1);
    await blocks.lift(results[0]!.block.id, 'cleanup');
  });
  it('refuses a block that ends before it starts', async () => {
    const store = createIpBlockStore(database.db as unknown as Kysely<IpBlockTables>);
    const at = new Date('2026-12-01T09:00:00Z');
    await expect(
      store.open({
        id: randomIds.uuid(),
        ip: '203.0.113.1',
        reason: 'x',
        source: 'test',
        client_id: null,
        blocked_at: at,
        blocked_until: at,
      }),
    ).rejects.toThrow();
  });
});
