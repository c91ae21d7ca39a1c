import { PGlite } from '@electric-sql/pglite';
import { CompiledQuery, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { dataDirPgVersion, prepareDataDir } from './data-dir.js';
import type { DataDirLock } from './data-dir.js';
import { DatabaseError, databaseAddress, redactDatabaseUrl } from './errors.js';
import { PGliteDialect } from './pglite-dialect.js';
import { pgliteParsers, pgTypes } from './type-parsers.js';

export { DatabaseError, redactDatabaseUrl } from './errors.js';

/**
 * One SQL dialect, PostgreSQL, on two engines: PGlite (PostgreSQL in WebAssembly, in
 * process; persisted in a data directory, or in memory) by default, and a real PostgreSQL
 * server through node-postgres when a URL is given. The same migrations and queries run on
 * both; values come back as the same JavaScript types (see type-parsers.ts). Every session
 * runs in UTC on both engines.
 */
export type DatabaseKind = 'pglite' | 'postgres';

export interface Database<DB> {
  readonly kind: DatabaseKind;
  /** As given to openDatabase, e.g. 'portal'; used in messages. */
  readonly name: string;
  readonly db: Kysely<DB>;
  /** Runs `select 1`; throws DatabaseError ERR_DB_UNREACHABLE when PostgreSQL is gone. */
  ping(): Promise<void>;
  /** Closes the pool or PGlite (waiting for a running transaction) and releases the data dir. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL of a PostgreSQL server. When set, dataDir is ignored. */
  url?: string | undefined;
  /** PGlite data directory, e.g. `<dataDir>/portal-db`; omitted = in memory. */
  dataDir?: string | undefined;
  /** For messages and the URL variable named in them, e.g. 'portal' (PORTAL_DATABASE_URL). */
  name: string;
  /** PostgreSQL pool size (default 10). PGlite always has a single connection. */
  poolSize?: number;
  /** Where background errors (an idle pooled connection dropping) go; default console.warn. */
  onBackgroundError?: (error: Error) => void;
  /**
   * PGlite in memory only: start from this data-directory dump (see createPgliteTemplate)
   * instead of running initdb. About 4x faster; tests use it.
   */
  pgliteTemplate?: Blob | undefined;
}

const CONNECT_TIMEOUT_MS = 5_000;

export async function openDatabase<DB>(opts: OpenDatabaseOptions): Promise<Database<DB>> {
  return opts.url ? openPostgres<DB>(opts.url, opts) : openPglite<DB>(opts);
}

/** A dump of a freshly initialised, empty PGlite database, for `pgliteTemplate`. */
export async function createPgliteTemplate(): Promise<Blob> {
  const pglite = await PGlite.create();
  try {
    return await pglite.dumpDataDir('none');
  } finally {
    await pglite.close();
  }
}

async function openPglite<DB>(opts: OpenDatabaseOptions): Promise<Database<DB>> {
  const { name } = opts;
  const lock: DataDirLock | undefined = opts.dataDir
    ? prepareDataDir(opts.dataDir, name)
    : undefined;
  const dataDirFailure = (err: unknown): DatabaseError => {
    const dir = lock?.dataDir ?? '';
    const version = dataDirPgVersion(dir);
    let reason = err instanceof Error ? err.message : String(err);
    // A WebAssembly abort says "Aborted(). Build with -sASSERTIONS for more info."
    if (reason.startsWith('Aborted(')) reason = 'PostgreSQL aborted while reading them';
    return new DatabaseError(
      'ERR_DB_DATA_DIR',
      `Could not open the ${name} database in ${dir} (${reason}). The files may be corrupt, or written by an ` +
        `incompatible PGlite version${version ? ` (they are PostgreSQL ${version} files)` : ''}. ` +
        'Restore the directory from a backup, or move it aside to start with an empty database.',
      { cause: err },
    );
  };

  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(lock ? { dataDir: lock.dataDir } : {}),
      ...(!lock && opts.pgliteTemplate ? { loadDataDir: opts.pgliteTemplate } : {}),
      parsers: pgliteParsers,
    });
  } catch (err) {
    lock?.release();
    throw lock ? dataDirFailure(err) : err;
  }

  const db = new Kysely<DB>({
    dialect: new PGliteDialect({ pglite, name, onDestroy: () => lock?.release() }),
  });
  try {
    // PGlite starts in UTC already; pinned so both engines agree whatever the defaults.
    await sql`set time zone 'UTC'`.execute(db);
    await sql`select 1`.execute(db);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw lock ? dataDirFailure(err) : err;
  }

  return makeDatabase('pglite', name, db, async () => {
    await sql`select 1`.execute(db);
  });
}

async function openPostgres<DB>(url: string, opts: OpenDatabaseOptions): Promise<Database<DB>> {
  const { name } = opts;
  const variable = urlVariable(name);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DatabaseError(
      'ERR_DB_CONFIG',
      `The ${name} database URL is not a valid URL. Check ${variable}.`,
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new DatabaseError(
      'ERR_DB_CONFIG',
      `The ${name} database URL must start with postgres:// or postgresql:// (got ${parsed.protocol}//). Check ${variable}.`,
    );
  }

  const onBackgroundError =
    opts.onBackgroundError ?? ((error: Error) => console.warn(`[db] ${error.message}`));
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolSize ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    application_name: `soglasie-${name}`,
    types: pgTypes,
  });
  // Without a listener, an idle client losing its connection (server restart, network)
  // is an unhandled 'error' event and takes the process down.
  pool.on('error', (err) => {
    onBackgroundError(
      new Error(
        `An idle connection to the ${name} database at ${databaseAddress(url)} failed: ${scrub(err.message, parsed)}. ` +
          'It was dropped; the next query opens a new one.',
        { cause: err },
      ),
    );
  });

  const db = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool,
      onCreateConnection: async (connection) => {
        await connection.executeQuery(CompiledQuery.raw("set time zone 'UTC'"));
      },
    }),
  });
  const ping = async (): Promise<void> => {
    try {
      await sql`select 1`.execute(db);
    } catch (err) {
      throw unreachable(name, url, parsed, err);
    }
  };
  try {
    await ping();
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
  return makeDatabase('postgres', name, db, ping);
}

function makeDatabase<DB>(
  kind: DatabaseKind,
  name: string,
  db: Kysely<DB>,
  ping: () => Promise<void>,
): Database<DB> {
  let closing: Promise<void> | undefined;
  return {
    kind,
    name,
    db,
    ping,
    close: () => (closing ??= db.destroy()),
  };
}

/** PORTAL_DATABASE_URL for 'portal', and so on. */
function urlVariable(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_DATABASE_URL`;
}

function unreachable(name: string, url: string, parsed: URL, err: unknown): DatabaseError {
  if (err instanceof DatabaseError) return err;
  const { reason, hint } = explainConnectError(err);
  return new DatabaseError(
    'ERR_DB_UNREACHABLE',
    `Cannot reach the ${name} database at ${databaseAddress(url)}: ${scrub(reason, parsed)}. ${hint} Check ${urlVariable(name)}.`,
    { cause: err },
  );
}

function explainConnectError(err: unknown): { reason: string; hint: string } {
  const e = (err ?? {}) as { code?: unknown; message?: unknown; errors?: { code?: unknown }[] };
  const code =
    typeof e.code === 'string' ? e.code : e.errors?.find((x) => typeof x.code === 'string')?.code;
  const message = typeof e.message === 'string' ? e.message : String(err);
  switch (code) {
    case 'ECONNREFUSED':
      return { reason: 'connection refused', hint: 'Is PostgreSQL running?' };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { reason: 'host not found', hint: 'Is the host name right?' };
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return {
        reason: 'no route to the server',
        hint: 'Is the server up and not blocked by a firewall?',
      };
    case 'ECONNRESET':
      return {
        reason: 'the server closed the connection',
        hint: 'Is this a PostgreSQL server, and are the SSL settings right?',
      };
    case '28P01':
    case '28000':
      return { reason: message, hint: 'Check the user name and password.' };
    case '3D000':
      return { reason: message, hint: 'Create the database (createdb) or fix its name.' };
    case '57P03':
      return {
        reason: 'the server is starting up or shutting down',
        hint: 'Try again in a moment.',
      };
    case '53300':
      return {
        reason: 'the server has too many connections',
        hint: 'Lower pool sizes or raise max_connections.',
      };
  }
  if (/timeout|timed out/i.test(message)) {
    return {
      reason: `no answer within ${CONNECT_TIMEOUT_MS / 1000} s`,
      hint: 'Is the server up and not blocked by a firewall?',
    };
  }
  if (/terminated/i.test(message)) {
    return {
      reason: 'the connection was closed',
      hint: 'Is this a PostgreSQL server, and are the SSL settings right?',
    };
  }
  return { reason: message, hint: 'Is PostgreSQL running and reachable?' };
}

/** Removes the URL's password from a driver message, should a driver ever echo it. */
function scrub(text: string, url: URL): string {
  let out = text.split(url.toString()).join(redactDatabaseUrl(url.toString()));
  if (url.password) {
    for (const secret of new Set([url.password, safeDecode(url.password)])) {
      if (secret.length >= 3) out = out.split(secret).join('***');
    }
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
