import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { openDatabase, type Database } from './database.js';
import { DatabaseError } from './errors.js';
import { migrateToLatest, migrationStatus, type Migration, type Migrations } from './migrate.js';

async function tableExists(db: Kysely<unknown>, table: string): Promise<boolean> {
  const { rows } = await sql<{
    exists: boolean;
  }>`select to_regclass(${table}) is not null as exists`.execute(db);
  return rows[0]!.exists;
}

function createTable(name: string, ran?: string[]): Migration {
  return {
    async up(db) {
      ran?.push(name);
      await db.schema
        .createTable(name)
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .execute();
    },
  };
}

describeEachEngine('migrations', (engine) => {
  let database: FreshDatabase<unknown>;
  beforeEach(async () => {
    database = await freshDatabase(engine);
  });
  afterEach(async () => {
    await database.close();
  });

  it('applies migrations in name order, records them, and reports status', async () => {
    const ran: string[] = [];
    // Deliberately listed out of order: the names decide.
    const migrations: Migrations = {
      '0002_accounts': createTable('accounts', ran),
      '0001_citizens': createTable('citizens', ran),
      '0003_consents': createTable('consents', ran),
    };
    expect(await migrationStatus(database, migrations)).toEqual({
      applied: [],
      pending: ['0001_citizens', '0002_accounts', '0003_consents'],
    });

    const log: string[] = [];
    const applied = await migrateToLatest(database, migrations, { log: (m) => log.push(m) });

    expect(applied).toEqual(['0001_citizens', '0002_accounts', '0003_consents']);
    expect(ran).toEqual(['citizens', 'accounts', 'consents']);
    expect(log).toEqual([
      'Applied migration 0001_citizens to the test database',
      'Applied migration 0002_accounts to the test database',
      'Applied migration 0003_consents to the test database',
    ]);
    const { rows } = await sql<{
      name: string;
    }>`select name from kysely_migration order by name`.execute(database.db);
    expect(rows.map((r) => r.name)).toEqual(applied);
    expect(await migrationStatus(database, migrations)).toEqual({ applied, pending: [] });
  });

  it('applies nothing the second time, and only new migrations later', async () => {
    const first: Migrations = { '0001_citizens': createTable('citizens') };
    expect(await migrateToLatest(database, first)).toEqual(['0001_citizens']);
    expect(await migrateToLatest(database, first)).toEqual([]);
    const second: Migrations = { ...first, '0002_accounts': createTable('accounts') };
    expect(await migrateToLatest(database, second)).toEqual(['0002_accounts']);
    expect(await migrateToLatest(database, second)).toEqual([]);
  });

  it('rolls back a failed migration entirely and names it', async () => {
    const migrations: Migrations = {
      '0001_citizens': createTable('citizens'),
      '0002_broken': {
        async up(db) {
          await db.schema.createTable('half_done').addColumn('id', 'integer').execute();
          await sql`insert into half_done values (1)`.execute(db);
          await sql`alter table no_such_table add column x integer`.execute(db);
        },
      },
      '0003_after': createTable('after_broken'),
    };

    const err = await migrateToLatest(database, migrations).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(DatabaseError);
    expect(err).toMatchObject({ code: 'ERR_DB_MIGRATION', migrationName: '0002_broken' });
    expect((err as Error).message).toContain('Migration 0002_broken of the test database failed');
    expect((err as Error).message).toContain('no_such_table');
    expect(await tableExists(database.db, 'half_done')).toBe(false);
    expect(await tableExists(database.db, 'after_broken')).toBe(false);
    // The migration before it stays applied.
    expect(await tableExists(database.db, 'citizens')).toBe(true);
    expect(await migrationStatus(database, migrations)).toEqual({
      applied: ['0001_citizens'],
      pending: ['0002_broken', '0003_after'],
    });
  });

  it('refuses to run when the database has a migration this code does not know', async () => {
    await migrateToLatest(database, { '0001_a': createTable('a'), '0002_b': createTable('b') });

    const err = await migrateToLatest(database, { '0001_a': createTable('a') }).catch(
      (e: unknown) => e,
    );

    expect(err).toMatchObject({ code: 'ERR_DB_MIGRATION', migrationName: '0002_b' });
    expect((err as Error).message).toMatch(
      /has migration 0002_b applied, which this version does not know/,
    );
  });

  it('runs each migration once when two migrators race', async () => {
    const runs: string[] = [];
    const slow = (table: string): Migration => ({
      async up(db) {
        runs.push(table);
        await sql`select pg_sleep(0.05)`.execute(db);
        await db.schema.createTable(table).addColumn('id', 'integer').execute();
      },
    });
    const migrations: Migrations = {
      '0001_a': slow('a'),
      '0002_b': slow('b'),
      '0003_c': slow('c'),
      '0004_d': slow('d'),
    };
    // On PostgreSQL, a second pool to the same database: two instances starting at once.
    // On PGlite, one process can only have the database once, so both use the same one.
    let other: Database<unknown> = database;
    if (database.url) other = await openDatabase({ name: 'test', url: database.url });
    try {
      const [one, two] = await Promise.all([
        migrateToLatest(database, migrations),
        migrateToLatest(other, migrations),
      ]);
      expect([...one, ...two].sort()).toEqual(['0001_a', '0002_b', '0003_c', '0004_d']);
      expect(runs.sort()).toEqual(['a', 'b', 'c', 'd']);
      expect(await migrationStatus(database, migrations)).toMatchObject({ pending: [] });
    } finally {
      if (other !== database) await other.close();
    }
  });
});
