/**
 * The database layer: one SQL dialect (PostgreSQL), two engines. PGlite, embedded and
 * persisted in a data directory (or in memory for tests), is the default; a PostgreSQL
 * server is used when a URL is given. Kysely for typed queries, migrations kept as code.
 *
 *   const database = await openDatabase<PortalDB>({ name: 'portal', url, dataDir });
 *   await migrateToLatest(database, portalMigrations);
 *   await inTransaction(database.db, async (trx) => { ... });
 */
export { openDatabase, createPgliteTemplate } from './database.js';
export type { Database, DatabaseKind, OpenDatabaseOptions } from './database.js';
export {
  DatabaseError,
  isDatabaseError,
  isUniqueViolation,
  redactDatabaseUrl,
  sqlState,
} from './errors.js';
export type { DatabaseErrorCode } from './errors.js';
export { migrateToLatest, migrationStatus } from './migrate.js';
export type { MigrateOptions, Migration, Migrations, MigrationStatus } from './migrate.js';
export { inTransaction } from './transaction.js';
export type { TransactionOptions } from './transaction.js';
export { PGliteDialect } from './pglite-dialect.js';
export type { PGliteDialectConfig } from './pglite-dialect.js';
