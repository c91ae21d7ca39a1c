import { Migrator } from 'kysely';
import type { Kysely, MigrationResult } from 'kysely';
import type { Database } from './database.js';
import { DatabaseError } from './errors.js';

/**
 * Versioned migrations, kept in the repository as code. A service has one
 * `Record<string, Migration>`; names sort in the order the migrations must run
 * ('0001_citizens', '0002_consents', ...). A migration, once released, never changes:
 * fix mistakes with a new one.
 *
 * Guarantees (on PGlite and PostgreSQL alike):
 * - each migration runs in its own transaction, together with the row that records it,
 *   so a failed migration leaves nothing of itself behind (PostgreSQL has transactional
 *   DDL) and the migrations before it stay applied;
 * - several processes migrating the same database at once is safe: every step holds
 *   Kysely's migration lock (a PostgreSQL advisory lock), so each migration runs once.
 *
 * Migrations must use PostgreSQL 15 SQL: PGlite is PostgreSQL 18, and SQL that only newer
 * versions know (uuidv7(), virtual generated columns, ...) passes the PGlite tests and then
 * fails on a PostgreSQL 15 server.
 */
export interface Migration {
  // Kysely<any>: a migration describes the schema as it was at that point, not today's types.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  up(db: Kysely<any>): Promise<void>;
}

export type Migrations = Readonly<Record<string, Migration>>;

export interface MigrateOptions {
  /** Told about each applied migration, e.g. `(m) => logger.info(m)`. */
  log?: (message: string) => void;
}

export interface MigrationStatus {
  /** Applied migrations, in order. */
  applied: string[];
  /** Known migrations not yet applied, in order. */
  pending: string[];
}

/** A database opened by openDatabase, or anything else holding a Kysely instance. */
type HasDb<DB> = Pick<Database<DB>, 'db'> & { readonly name?: string };

/**
 * Applies every pending migration, one transaction each, and returns their names (empty
 * when the database was up to date). Throws DatabaseError ERR_DB_MIGRATION naming the
 * migration that failed; those applied before it in this run stay applied.
 */
export async function migrateToLatest<DB>(
  database: HasDb<DB>,
  migrations: Migrations,
  opts: MigrateOptions = {},
): Promise<string[]> {
  const migrator = makeMigrator(database, migrations);
  const label = databaseLabel(database);
  const applied: string[] = [];
  for (;;) {
    // One step per call: migrateToLatest() would run all pending migrations in a single
    // transaction, so a failure in the last would undo the others too.
    const { error, results = [] } = await migrator.migrateUp();
    const failed = results.find((r: MigrationResult) => r.status === 'Error');
    if (failed) {
      const reason = error instanceof Error ? error.message : String(error);
      const before = applied.length
        ? ` The ${applied.length} migration(s) before it in this run stay applied.`
        : '';
      throw new DatabaseError(
        'ERR_DB_MIGRATION',
        `Migration ${failed.migrationName} of ${label} failed: ${reason}. Nothing of it was applied (its transaction was rolled back).${before}`,
        { cause: error, migrationName: failed.migrationName },
      );
    }
    if (error !== undefined) throw explainMigratorError(error, label);
    const done = results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
    if (done.length === 0) return applied;
    for (const name of done) {
      applied.push(name);
      opts.log?.(`Applied migration ${name} to ${label}`);
    }
  }
}

/** Which of `migrations` are applied and which are pending. Reads only; creates nothing. */
export async function migrationStatus<DB>(
  database: HasDb<DB>,
  migrations: Migrations,
): Promise<MigrationStatus> {
  let infos;
  try {
    infos = await makeMigrator(database, migrations).getMigrations();
  } catch (err) {
    throw explainMigratorError(err, databaseLabel(database));
  }
  return {
    applied: infos.filter((m) => m.executedAt !== undefined).map((m) => m.name),
    pending: infos.filter((m) => m.executedAt === undefined).map((m) => m.name),
  };
}

function makeMigrator<DB>(database: HasDb<DB>, migrations: Migrations): Migrator {
  for (const name of Object.keys(migrations)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw new DatabaseError(
        'ERR_DB_MIGRATION',
        `Invalid migration name "${name}": use e.g. 0001_citizens.`,
      );
    }
  }
  return new Migrator({
    db: database.db,
    provider: { getMigrations: async () => ({ ...migrations }) },
  });
}

function databaseLabel<DB>(database: HasDb<DB>): string {
  return database.name ? `the ${database.name} database` : 'the database';
}

function explainMigratorError(error: unknown, label: string): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const missing = /previously executed migration (\S+) is missing/.exec(message);
  if (missing) {
    return new DatabaseError(
      'ERR_DB_MIGRATION',
      `${capitalize(label)} has migration ${missing[1]} applied, which this version does not know. ` +
        'Is this an older version of Soglasie than the one that last ran on this database?',
      { cause: error, migrationName: missing[1] },
    );
  }
  return new DatabaseError('ERR_DB_MIGRATION', `Migrating ${label} failed: ${message}`, {
    cause: error,
  });
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
