import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { describeEachEngine, freshDatabase } from '../../../test/support/databases.js';
import { LOCK_FILE_NAME } from './data-dir.js';
import { openDatabase, type Database } from './database.js';
import { DatabaseError } from './errors.js';

interface NotesDB {
  notes: { id: number; text: string };
}

async function errorOf(promise: Promise<unknown>): Promise<DatabaseError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DatabaseError);
  return err as DatabaseError;
}

describeEachEngine('openDatabase', (engine) => {
  it('opens a working, empty database and closes it', async () => {
    const database = await freshDatabase<NotesDB>(engine);
    try {
      expect(database.kind).toBe(engine.name);
      await database.ping();
      const { rows } = await sql<{
        n: number;
      }>`select count(*)::int as n from pg_tables where schemaname = 'public'`.execute(database.db);
      expect(rows).toEqual([{ n: 0 }]);
      const { rows: tz } = await sql<{
        tz: string;
      }>`select current_setting('TimeZone') as tz`.execute(database.db);
      expect(tz[0]!.tz).toBe('UTC');
    } finally {
      await database.close();
      await database.close(); // idempotent
    }
  });
});

describe('openDatabase with PGlite in a data directory', () => {
  let tmp: string;
  let initialized: string; // an initialised, empty data directory, copied by tests
  const opened: Database<unknown>[] = [];
  beforeAll(async () => {
    initialized = fs.mkdtempSync(path.join(os.tmpdir(), 'soglasie-db-initialized-'));
    await (await openDatabase({ name: 'portal', dataDir: initialized })).close();
  });
  afterAll(() => {
    fs.rmSync(initialized, { recursive: true, force: true });
  });
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'soglasie-db-test-'));
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((d) => d.close()));
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const open = async <DB>(dataDir: string): Promise<Database<DB>> => {
    const database = await openDatabase<DB>({ name: 'portal', dataDir });
    opened.push(database as Database<unknown>);
    return database;
  };
  const initializedCopy = (): string => {
    const dir = path.join(tmp, 'portal-db');
    fs.cpSync(initialized, dir, { recursive: true });
    return dir;
  };
  const writeLock = (dir: string, pid: number) => {
    const lock = { pid, hostname: os.hostname(), since: '2026-01-01T00:00:00.000Z' };
    fs.writeFileSync(path.join(dir, LOCK_FILE_NAME), JSON.stringify(lock));
  };

  it('creates the directory, and keeps its data across close and reopen', async () => {
    const dataDir = path.join(tmp, 'nested', 'portal-db'); // parents are created
    const first = await open<NotesDB>(dataDir);
    await sql`create table notes (id integer primary key, text text not null)`.execute(first.db);
    await first.db.insertInto('notes').values({ id: 1, text: 'persisted' }).execute();
    await first.close();
    expect(fs.existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, LOCK_FILE_NAME))).toBe(false); // released

    const second = await open<NotesDB>(dataDir);
    expect(await second.db.selectFrom('notes').selectAll().execute()).toEqual([
      { id: 1, text: 'persisted' },
    ]);
  });

  it('refuses a data directory that is a regular file', async () => {
    const file = path.join(tmp, 'portal-db');
    fs.writeFileSync(file, 'not a directory');

    const err = await errorOf(open(file));

    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/is a file, not a directory/);
  });

  it('refuses a data directory below a regular file', async () => {
    fs.writeFileSync(path.join(tmp, 'file'), '');
    const err = await errorOf(open(path.join(tmp, 'file', 'portal-db')));
    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toMatch(/cannot be (read|created)/);
  });

  it('refuses a non-empty directory that is not a database, and leaves it untouched', async () => {
    const dir = path.join(tmp, 'documents');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');

    const err = await errorOf(open(dir));

    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toMatch(/not empty and does not hold a PGlite database/);
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']);
  });

  it('reports corrupt database files as ERR_DB_DATA_DIR, saying what to do', async () => {
    const dataDir = initializedCopy();
    fs.writeFileSync(path.join(dataDir, 'global', 'pg_control'), 'garbage');

    const err = await errorOf(open(dataDir));

    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toContain(dataDir);
    expect(err.message).toMatch(/may be corrupt/);
    expect(err.message).toMatch(/move it aside to start with an empty database/);
    expect(fs.existsSync(path.join(dataDir, LOCK_FILE_NAME))).toBe(false);
  });

  it('reports files of another PostgreSQL version as ERR_DB_DATA_DIR', async () => {
    const dataDir = path.join(tmp, 'portal-db');
    fs.mkdirSync(dataDir);
    fs.writeFileSync(path.join(dataDir, 'PG_VERSION'), '9\n');

    const err = await errorOf(open(dataDir));

    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toMatch(/they are PostgreSQL 9 files/);
  });

  it('refuses to open a directory that is already open', async () => {
    const dataDir = initializedCopy();
    const first = await open(dataDir);

    const err = await errorOf(open(dataDir));
    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toMatch(/in use by this same process/);

    await first.close();
    await (await open(dataDir)).ping();
  });

  it('refuses a directory locked by another live process', async () => {
    const dataDir = path.join(tmp, 'portal-db');
    fs.mkdirSync(dataDir);
    // The parent of this test process (vitest) is alive and is not us.
    writeLock(dataDir, process.ppid);

    const err = await errorOf(open(dataDir));
    expect(err.code).toBe('ERR_DB_DATA_DIR');
    expect(err.message).toContain(`pid ${process.ppid}`);
    expect(err.message).toMatch(/one process per data directory/);
    expect(fs.readdirSync(dataDir)).toEqual([LOCK_FILE_NAME]); // PGlite never touched it
  });

  it('takes over a lock left by a process that died', async () => {
    const dataDir = initializedCopy();
    writeLock(dataDir, spawnSync(process.execPath, ['-e', '0']).pid);

    const database = await open(dataDir);
    await database.ping();
    const held = JSON.parse(fs.readFileSync(path.join(dataDir, LOCK_FILE_NAME), 'utf8')) as {
      pid: number;
    };
    expect(held.pid).toBe(process.pid);
  });
});

describe('openDatabase with a PostgreSQL URL', () => {
  it('reports an unreachable server clearly, without the password', async () => {
    const err = await errorOf(
      openDatabase({ name: 'portal', url: 'postgres://soglasie:S3cret-pass@127.0.0.1:1/portal' }),
    );

    expect(err.code).toBe('ERR_DB_UNREACHABLE');
    expect(err.message).toBe(
      'Cannot reach the portal database at 127.0.0.1:1: connection refused. Is PostgreSQL running? Check PORTAL_DATABASE_URL.',
    );
    expect(err.message).not.toContain('S3cret-pass');
    expect(JSON.stringify(err)).not.toContain('S3cret-pass');
  });

  it('rejects a URL that is not a postgres:// URL', async () => {
    const err = await errorOf(
      openDatabase({ name: 'bank', url: 'mysql://root:pw@localhost/bank' }),
    );
    expect(err.code).toBe('ERR_DB_CONFIG');
    expect(err.message).toMatch(/must start with postgres:\/\/.*Check BANK_DATABASE_URL/);
    expect(err.message).not.toContain('pw@');
  });

  const admin = process.env.TEST_DATABASE_URL;

  it.runIf(admin)('says so when the database does not exist', async () => {
    const url = new URL(admin!);
    url.pathname = '/soglasie_no_such_database';
    const err = await errorOf(openDatabase({ name: 'bank', url: url.toString() }));
    expect(err.code).toBe('ERR_DB_UNREACHABLE');
    expect(err.message).toMatch(
      /database "soglasie_no_such_database" does not exist\. Create the database/,
    );
  });

  it.runIf(admin)('survives the server dropping idle connections', async () => {
    const database = await freshDatabase({ name: 'postgres' });
    const background: Error[] = [];
    const watched = await openDatabase({
      name: 'bank',
      url: database.url!,
      onBackgroundError: (e) => background.push(e),
    });
    try {
      await watched.ping(); // leaves an idle client in the pool
      const killer = new pg.Client({ connectionString: admin });
      await killer.connect();
      await killer.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'soglasie-bank' and datname = $1`,
        [new URL(database.url!).pathname.slice(1)],
      );
      await killer.end();
      await expect.poll(() => background.length).toBeGreaterThan(0);
      expect(background[0]!.message).toMatch(/idle connection to the bank database .* failed/);
      await watched.ping(); // a new connection is opened
    } finally {
      await watched.close();
      await database.close();
    }
  });
});
