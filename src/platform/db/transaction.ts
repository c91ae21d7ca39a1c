import type { IsolationLevel, Kysely, Transaction } from 'kysely';
import { runInTransactionScope } from './connection-context.js';

export interface TransactionOptions {
  isolationLevel?: IsolationLevel;
}

/**
 * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws (the
 * error is rethrown). A thin wrapper over `db.transaction().execute(fn)`.
 *
 * Inside `fn`, query only through `trx`, and pass `trx` down to any function that needs
 * the database (they should accept a `Kysely<DB>`, which a `Transaction<DB>` is). Queries
 * through the outer `db` would run outside the transaction on PostgreSQL, and deadlock on
 * PGlite's single connection (the PGlite driver detects this and throws ERR_DB_BUSY).
 *
 * Nesting: when `db` is already a transaction, `fn` simply runs in it (no savepoint), so a
 * function can call inTransaction on whatever it was given. Transactions are not retried:
 * with isolationLevel 'serializable', retry on SQLSTATE 40001 yourself.
 */
export function inTransaction<DB, T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  if (db.isTransaction) return fn(db as Transaction<DB>);
  const builder = opts.isolationLevel
    ? db.transaction().setIsolationLevel(opts.isolationLevel)
    : db.transaction();
  return runInTransactionScope(() => builder.execute(fn));
}
