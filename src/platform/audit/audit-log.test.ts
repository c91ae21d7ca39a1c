import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { migrateToLatest } from '../db/index.js';
import {
  addAuditMerkle,
  createAuditLog,
  createAuditTables,
  type AuditLog,
  type AuditTables,
} from './audit-log.js';

const AUDIT_MIGRATIONS = {
  '0001_audit': { up: (db: Kysely<never>) => createAuditTables(db) },
  '0002_audit_merkle': { up: (db: Kysely<never>) => addAuditMerkle(db) },
};

describeEachEngine('audit log', (engine) => {
  let database: FreshDatabase<AuditTables>;
  let clock: ReturnType<typeof manualClock>;
  let audit: AuditLog;

  beforeEach(async () => {
    clock = manualClock('2026-12-01T09:00:00Z');
    database = await freshDatabase<AuditTables>(engine);
    await migrateToLatest(database, AUDIT_MIGRATIONS);
    audit = createAuditLog(database.db, clock);
  });
  afterEach(async () => {
    await database.close();
  });

  async function rows() {
    const all = await database.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    return all.map((r) => ({ ...r, seq: String(r.seq), at: new Date(r.at).toISOString() }));
  }

  it('appends entries with the time of the clock and lists them newest first', async () => {
    await audit.append({
      actor: 'citizen:c1',
      action: 'consent.granted',
      subject: 'consent:k1',
      details: { client_id: 'partner-bank', scopes: ['fullname'] },
    });
    clock.advance(60_000);
    await audit.append({ actor: 'partner:partner-bank', action: 'data.read' });

    const listed = await audit.list();
    expect(listed.map((e) => e.action)).toEqual(['data.read', 'consent.granted']);
    expect(listed[1]).toMatchObject({
      actor: 'citizen:c1',
      subject: 'consent:k1',
      details: { client_id: 'partner-bank', scopes: ['fullname'] },
    });
    expect(new Date(listed[1]!.at).toISOString()).toBe('2026-12-01T09:00:00.000Z');
    expect(listed[0]).toMatchObject({ subject: null, details: {} });
    expect(new Date(listed[0]!.at).toISOString()).toBe('2026-12-01T09:01:00.000Z');
  });

  it('filters by subject and action, and honours the limit', async () => {
    await audit.append({ actor: 'a', action: 'consent.granted', subject: 'consent:k1' });
    await audit.append({ actor: 'a', action: 'data.read', subject: 'consent:k1' });
    await audit.append({ actor: 'a', action: 'data.read', subject: 'consent:k2' });
    await audit.append({ actor: 'a', action: 'data.read', subject: 'consent:k1' });

    expect(await audit.list({ subject: 'consent:k2' })).toHaveLength(1);
    expect(await audit.list({ action: 'data.read' })).toHaveLength(3);
    const both = await audit.list({ subject: 'consent:k1', action: 'data.read' });
    expect(both).toHaveLength(2);
    const limited = await audit.list({ limit: 2 });
    expect(limited.map((e) => e.action)).toEqual(['data.read', 'data.read']);
    expect(limited.map((e) => e.subject)).toEqual(['consent:k1', 'consent:k2']);
  });

  it.each([
    ['UPDATE', sql`update audit_log set action = 'nothing.happened', actor = 'attacker'`],
    ['DELETE', sql`delete from audit_log`],
    ['TRUNCATE', sql`truncate audit_log`],
  ])('the database refuses %s, and the entry stays as it was', async (_op, statement) => {
    await audit.append({
      actor: 'security:s1',
      action: 'citizen.blocked',
      subject: 'citizen:c1',
      details: { reason: 'fraud' },
    });
    const before = await rows();
    expect(before).toHaveLength(1);

    await expect(statement.execute(database.db)).rejects.toThrow(/append-only/);

    expect(await rows()).toEqual(before);
    // Appending still works after the refused statement.
    await audit.append({ actor: 'security:s1', action: 'citizen.unblocked' });
    expect(await rows()).toHaveLength(2);
  });

  it('refuses a targeted UPDATE of a single entry inside a transaction too', async () => {
    await audit.append({ actor: 'a', action: 'consent.revoked', subject: 'consent:k1' });
    const before = await rows();
    await expect(
      database.db.transaction().execute(async (trx) => {
        await sql`update audit_log set subject = null where seq = ${before[0]!.seq}`.execute(trx);
      }),
    ).rejects.toThrow(/append-only/);
    expect(await rows()).toEqual(before);
  });
});

describeEachEngine('audit log group commit', (engine) => {
  it('writes many concurrent appends in a few transactions, each durable before it resolves', async () => {
    const database = await freshDatabase<AuditTables>(engine);
    try {
      await migrateToLatest(database, AUDIT_MIGRATIONS);
      let inserts = 0;
      const counted = database.db.withPlugin({
        transformQuery(args) {
          if (args.node.kind === 'InsertQueryNode') inserts++;
          return args.node;
        },
        async transformResult(args) {
          return args.result;
        },
      });
      const audit = createAuditLog(counted, manualClock('2026-12-01T09:00:00Z'));
      await Promise.all(
        Array.from({ length: 100 }, (_, i) => audit.append({ actor: 'a', action: `act-${i}` })),
      );
      const rows = await database.db
        .selectFrom('audit_log')
        .select(['seq', 'action'])
        .orderBy('seq')
        .execute();
      expect(rows.map((r) => r.action)).toEqual(Array.from({ length: 100 }, (_, i) => `act-${i}`));
      expect(inserts).toBeLessThanOrEqual(3);
    } finally {
      await database.close();
    }
  });

  it('rejects every append of a batch that could not be written', async () => {
    const database = await freshDatabase<AuditTables>(engine);
    // No audit table: the batch fails as a whole, and nobody is told it was written.
    const audit = createAuditLog(database.db, manualClock('2026-12-01T09:00:00Z'));
    const results = await Promise.allSettled([
      audit.append({ actor: 'a', action: 'one' }),
      audit.append({ actor: 'a', action: 'two' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await database.close();
  });
});
