import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Which `inTransaction` scopes the current async call chain is inside, innermost last.
 *
 * PGlite has a single connection. If code inside a transaction queries through the outer
 * `db` instead of the `trx` it was given, that query waits for the connection the
 * transaction holds, and the transaction waits for the query: a deadlock. The PGlite driver
 * uses this context to recognise the situation and fail at once with a clear error instead.
 */
const scopes = new AsyncLocalStorage<readonly object[]>();

/** Runs `fn` inside a new transaction scope. */
export function runInTransactionScope<T>(fn: () => Promise<T>): Promise<T> {
  const parent = scopes.getStore() ?? [];
  return scopes.run([...parent, {}], fn);
}

/** The innermost transaction scope of the current call chain, if any. */
export function currentTransactionScope(): object | undefined {
  return scopes.getStore()?.at(-1);
}

/** True when the current call chain runs inside `scope`, directly or nested. */
export function isInsideTransactionScope(scope: object): boolean {
  return scopes.getStore()?.includes(scope) ?? false;
}
