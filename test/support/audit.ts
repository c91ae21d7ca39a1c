import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { freshDatabase, type FreshDatabase, type TestEngine } from './databases.js';
import { manualClock } from '../../src/platform/clock.js';
import { migrateToLatest } from '../../src/platform/db/index.js';
import {
  addAuditMerkle,
  createAuditLog,
  createAuditTables,
  type AuditTables,
} from '../../src/platform/audit/audit-log.js';
import { createAuditTree } from '../../src/platform/audit/audit-tree.js';
import { checkpointSigner } from '../../src/platform/audit/checkpoint.js';

/** The audit tables as the portal's migrations build them (0003, then 0008). */
export const AUDIT_MIGRATIONS = {
  '0001_audit': { up: (db: Kysely<never>) => createAuditTables(db) },
  '0002_audit_merkle': { up: (db: Kysely<never>) => addAuditMerkle(db) },
};

/** A fresh database with the audit log, its tree and a checkpoint signer; for tests. */
export async function auditFixture(engine: TestEngine) {
  const database: FreshDatabase<AuditTables> = await freshDatabase<AuditTables>(engine);
  await migrateToLatest(database, AUDIT_MIGRATIONS);
  const clock = manualClock('2026-12-01T09:00:00Z');
  const signer = checkpointSigner(randomBytes(32));
  const log = createAuditLog(database.db, clock, { pseudonymKey: randomBytes(32) });
  const tree = createAuditTree(database.db, { signer, clock });
  /** Appends `n` data reads concurrently (so in group-commit batches). */
  const appendMany = async (n: number, from = 0) => {
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        log.append({
          actor: `partner:p${(from + i) % 3}`,
          action: 'data.read',
          subject: `consent:c${(from + i) % 7}`,
          details: { resource: 'person', n: from + i, fields: ['fullname'] },
        }),
      ),
    );
  };
  /** Runs `statement` with the append-only triggers off: how a database owner would tamper. */
  const tamper = async (statement: ReturnType<typeof sql>) => {
    const db = database.db;
    for (const t of ['audit_log', 'audit_tree_nodes', 'audit_checkpoints']) {
      await sql`alter table ${sql.table(t)} disable trigger user`.execute(db);
    }
    try {
      await statement.execute(db);
    } finally {
      for (const t of ['audit_log', 'audit_tree_nodes', 'audit_checkpoints']) {
        await sql`alter table ${sql.table(t)} enable trigger user`.execute(db);
      }
    }
  };
  return { database, db: database.db, clock, signer, log, tree, appendMany, tamper };
}
