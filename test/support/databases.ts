import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { createPgliteTemplate, openDatabase, type Database } from '../../src/platform/db/index.js';

/**
 * Run the same store tests on every database engine: always PGlite (in memory), and
 * PostgreSQL too when TEST_DATABASE_URL points at a server, e.g.
 *
 *   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx vitest run
 *
 * On PostgreSQL, TEST_DATABASE_URL is only the admin connection: each test gets its own
 * `soglasie_t_<random>` database, created from template0 and dropped on close. Only
 * databases created here are ever dropped.
 */
export interface TestEngine {
  name: 'pglite' | 'postgres';
}

export type FreshDatabase<DB> = Database<DB> & {
  /** PostgreSQL only: the URL of this fresh database, to open a second connection to it. */
  url?: string;
};

const DB_PREFIX = 'soglasie_t_';

/** Engines to run on: always pglite (in memory); plus postgres when TEST_DATABASE_URL is set. */
export function testEngines(): TestEngine[] {
  return adminUrl() ? [{ name: 'pglite' }, { name: 'postgres' }] : [{ name: 'pglite' }];
}

/** Convenience: describe.each over testEngines(), named "<title> [pglite]" and so on. */
export function describeEachEngine(title: string, fn: (engine: TestEngine) => void): void {
  const cases = testEngines().map((engine) => [engine.name, engine] as const);
  describe.each(cases)(`${title} [%s]`, (_name, engine) => {
    // Safety net: a test that forgot close() must not leave a database (or memory) behind.
    // Only what was opened inside this block is closed, never a database from outside it.
    let openBefore = new Set<unknown>();
    beforeAll(() => {
      openBefore = new Set([...openFresh.keys(), ...pendingDrops.keys()]);
    });
    afterAll(() => closeFreshDatabases((key) => !openBefore.has(key)));
    fn(engine);
  });
}

/** Databases opened by freshDatabase and not closed yet, with their full close. */
const openFresh = new Map<object, () => Promise<void>>();

/**
 * Opens a fresh, empty database on that engine. close() also drops it (PostgreSQL).
 * PGlite starts from a cached template of an empty database, which is several times
 * faster than initdb.
 */
export async function freshDatabase<DB>(engine: TestEngine): Promise<FreshDatabase<DB>> {
  if (engine.name === 'pglite') {
    return track({ ...(await openPgliteFromTemplate<DB>()) });
  }
  const fresh = await freshPostgresUrl();
  let database: Database<DB>;
  try {
    database = await openDatabase<DB>({ name: 'test', url: fresh.url, poolSize: 5 });
  } catch (err) {
    await fresh.drop();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      try {
        await database.close();
      } finally {
        await fresh.drop();
      }
    })());
  return track({ ...database, url: fresh.url, close });
}

/**
 * Creates an empty PostgreSQL database for a test that starts services from their own
 * configuration (e.g. an end-to-end test). Requires TEST_DATABASE_URL. drop() removes it,
 * even while connections to it are open.
 */
export async function freshPostgresUrl(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = adminUrl();
  if (!admin)
    throw new Error('freshPostgresUrl() needs TEST_DATABASE_URL (a PostgreSQL admin URL).');
  const name = `${DB_PREFIX}${randomBytes(8).toString('hex')}`;
  await withAdmin(admin, (client) => client.query(`create database ${name} template template0`));
  let dropping: Promise<void> | undefined;
  const drop = () => (dropping ??= dropCreated(admin, name));
  pendingDrops.set(name, drop);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop };
}

/** Closes (and drops) every fresh database still open. */
export function closeAllFreshDatabases(): Promise<void> {
  return closeFreshDatabases(() => true);
}

async function closeFreshDatabases(select: (key: unknown) => boolean): Promise<void> {
  const closes = [...openFresh].filter(([key]) => select(key));
  for (const [key] of closes) openFresh.delete(key);
  const results = await Promise.allSettled(closes.map(([, close]) => close()));
  // Then any freshPostgresUrl() database nobody dropped.
  const drops = [...pendingDrops].filter(([name]) => select(name));
  results.push(...(await Promise.allSettled(drops.map(([, drop]) => drop()))));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** Databases this process created and has not dropped yet (the only ones it may drop). */
const pendingDrops = new Map<string, () => Promise<void>>();

async function dropCreated(admin: string, name: string): Promise<void> {
  if (!pendingDrops.has(name) || !name.startsWith(DB_PREFIX)) {
    throw new Error(
      `refusing to drop ${name}: this helper did not create it, or dropped it already`,
    );
  }
  await withAdmin(admin, (client) => client.query(`drop database if exists ${name} with (force)`));
  pendingDrops.delete(name);
}

function track<DB>(database: FreshDatabase<DB>): FreshDatabase<DB> {
  const key = {};
  const close = database.close;
  const tracked: FreshDatabase<DB> = {
    ...database,
    close: async () => {
      openFresh.delete(key);
      await close();
    },
  };
  openFresh.set(key, tracked.close);
  return tracked;
}

async function withAdmin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function adminUrl(): string | undefined {
  const url = process.env.TEST_DATABASE_URL;
  return url ? url : undefined;
}

let template: Promise<Blob> | undefined;

/**
 * A dump of an empty PGlite database. Vitest isolates test files, so the dump is also
 * cached on disk (per PGlite version) for the other files and later runs.
 */
function pgliteTemplate(): Promise<Blob> {
  return (template ??= (async () => {
    const file = templateCacheFile();
    try {
      return new Blob([await fs.readFile(file)]);
    } catch {
      const blob = await createPgliteTemplate();
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
      await fs.writeFile(tmp, Buffer.from(await blob.arrayBuffer()));
      await fs.rename(tmp, file); // atomic: a reader never sees half a file
      return blob;
    }
  })());
}

async function openPgliteFromTemplate<DB>(): Promise<Database<DB>> {
  try {
    return await openDatabase<DB>({ name: 'test', pgliteTemplate: await pgliteTemplate() });
  } catch {
    // A bad cached template (it should not happen): forget it and start without one.
    await fs.rm(templateCacheFile(), { force: true });
    template = undefined;
    return openDatabase<DB>({ name: 'test', pgliteTemplate: await pgliteTemplate() });
  }
}

function templateCacheFile(): string {
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  let dir = path.dirname(entry);
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir)
    dir = path.dirname(dir);
  const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
    version: string;
  };
  return path.join(os.tmpdir(), `soglasie-pglite-template-${version}.tar`);
}
