import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { loadAuditSigner } from '../../src/platform/audit/audit-key.js';
import { createAuditLog, type AuditTables } from '../../src/platform/audit/audit-log.js';
import { createAuditTree } from '../../src/platform/audit/audit-tree.js';
import { openDatabase } from '../../src/platform/db/index.js';
import { createLogger } from '../../src/platform/http/logger.js';
import { openServiceRuntime } from '../../src/platform/runtime/service-runtime.js';
import type { ServiceKeyTables } from '../../src/platform/runtime/service-keys.js';
import { portalMigrations } from '../../src/portal/migrations.js';
import { describeEachEngine, freshPostgresUrl } from '../support/databases.js';
import { runCli } from '../support/demo-process.js';

/**
 * `soglasie audit verify` as a person runs it, on the portal's own database with the
 * services stopped: the embedded one in the data directory, or PORTAL_DATABASE_URL.
 */
describeEachEngine('soglasie audit verify', (engine) => {
  let dir: string;
  let env: Record<string, string>;
  let dropDatabase: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'soglasie-audit-'));
    env = { SOGLASIE_DATA_DIR: dir, SOGLASIE_MODE: 'test', NODE_ENV: 'test' };
    if (engine.name === 'postgres') {
      const fresh = await freshPostgresUrl();
      env.PORTAL_DATABASE_URL = fresh.url;
      dropDatabase = fresh.drop;
    }
    // The portal's database as the portal leaves it: entries, a checkpoint, newer entries.
    const runtime = await openServiceRuntime({
      service: 'portal',
      config: loadConfig(env, { serving: false }),
      migrations: portalMigrations,
      logger: createLogger({ name: 'test', level: 'silent' }),
    });
    try {
      const db = runtime.db as unknown as Kysely<AuditTables>;
      const log = createAuditLog(db, runtime.clock);
      const append = (n: number) =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            log.append({ actor: 'partner:p', action: 'data.read', subject: `consent:c${i}` }),
          ),
        );
      await append(500);
      const signer = await loadAuditSigner(
        runtime.db as unknown as Kysely<ServiceKeyTables>,
        runtime.keyring,
        runtime.clock.now(),
      );
      await createAuditTree(db, { signer, clock: runtime.clock }).publish();
      await append(20);
    } finally {
      await runtime.close();
    }
  }, 60_000);

  afterEach(async () => {
    await dropDatabase?.();
    await rm(dir, { recursive: true, force: true });
  });

  async function verify() {
    const run = runCli(['audit', 'verify'], env);
    const code = await run.exited;
    return { code, output: run.output().trim() };
  }

  it('reports OK with counts on a clean log, and the first bad index on a tampered one', async () => {
    const clean = await verify();
    expect(clean.output).toMatch(
      /^audit log OK: 520 entries, 1 signed checkpoint .*20 newest entries await the next checkpoint; [\d.]+ s$/,
    );
    expect(clean.code).toBe(0);

    // The database owner turns the trigger off and edits an entry.
    const database = await openDatabase<AuditTables>({
      name: 'portal',
      url: env.PORTAL_DATABASE_URL,
      dataDir: env.PORTAL_DATABASE_URL ? undefined : path.join(dir, 'portal-db'),
    });
    try {
      await sql`alter table audit_log disable trigger audit_log_append_only`.execute(database.db);
      await sql`update audit_log set subject = 'consent:someone-else' where leaf_index = 123`.execute(
        database.db,
      );
      await sql`alter table audit_log enable trigger audit_log_append_only`.execute(database.db);
    } finally {
      await database.close();
    }

    const tampered = await verify();
    expect(tampered.code).toBe(1);
    expect(tampered.output.split('\n')).toHaveLength(1);
    expect(tampered.output).toMatch(
      /^soglasie: audit log verification failed at index 123: entry 123 was changed/,
    );
  }, 60_000);
});
