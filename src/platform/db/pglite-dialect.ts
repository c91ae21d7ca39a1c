import type { PGlite, Results } from '@electric-sql/pglite';
import {
  AbortedTransactionError,
  CompiledQuery,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
} from 'kysely';
import type {
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';
import { currentTransactionScope, isInsideTransactionScope } from './connection-context.js';
import { DatabaseError } from './errors.js';

/**
 * A Kysely dialect for PGlite: PostgreSQL compiled to WebAssembly, in process.
 *
 * PGlite is one PostgreSQL session. Kysely expects a pool, so the driver hands out that one
 * connection to one holder at a time (FIFO): a Kysely transaction holds it from BEGIN to
 * COMMIT and nothing else can slip a statement in between. Everything else in Kysely's
 * PostgreSQL support (query compiler, adapter, introspector) applies unchanged.
 */
export interface PGliteDialectConfig {
  /** The PGlite instance, or a function that opens it (called once, on first use). */
  readonly pglite: PGlite | (() => Promise<PGlite>);
  /** For messages, e.g. 'portal'. */
  readonly name?: string;
  /**
   * How long a query may wait for the connection before failing with ERR_DB_BUSY.
   * Default 30 s; 0 waits forever. A long wait almost always means a deadlock.
   */
  readonly acquireTimeoutMillis?: number;
  /** Called after the PGlite instance is closed by `Kysely.destroy()`. */
  readonly onDestroy?: () => void | Promise<void>;
}

export class PGliteDialect implements Dialect {
  readonly #config: PGliteDialectConfig;

  constructor(config: PGliteDialectConfig) {
    this.#config = config;
  }

  createDriver(): Driver {
    return new PGliteDriver(this.#config);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

const DEFAULT_ACQUIRE_TIMEOUT_MS = 30_000;

interface Waiter {
  grant(): void;
  timer: NodeJS.Timeout | undefined;
}

export class PGliteDriver implements Driver {
  readonly #config: PGliteDialectConfig;
  readonly #label: string;
  #pglite: PGlite | undefined;
  #connection: PGliteConnection | undefined;
  /** Whether the connection is currently handed out. */
  #held = false;
  /** The `inTransaction` scope that holds the connection, if it was acquired inside one. */
  #holderScope: object | undefined;
  readonly #waiters: Waiter[] = [];
  #destroyed = false;

  constructor(config: PGliteDialectConfig) {
    this.#config = config;
    this.#label = config.name ? `the ${config.name} database (PGlite)` : 'the PGlite database';
  }

  async init(): Promise<void> {
    const { pglite } = this.#config;
    this.#pglite = typeof pglite === 'function' ? await pglite() : pglite;
    this.#connection = new PGliteConnection(this.#pglite);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const scope = currentTransactionScope();
    if (this.#held && this.#holderScope && isInsideTransactionScope(this.#holderScope)) {
      throw new DatabaseError(
        'ERR_DB_BUSY',
        `Deadlock avoided on ${this.#label}: code running inside a transaction used the database ` +
          'object instead of the transaction. PGlite has a single connection, which the transaction ' +
          'holds. Pass the transaction (trx) down and query through it.',
      );
    }
    if (this.#destroyed) throw this.#closedError();
    if (this.#held) {
      await this.#wait();
      if (this.#destroyed) {
        this.#handOver(); // we were given the connection; pass it on (to destroy())
        throw this.#closedError();
      }
    }
    if (!this.#connection) throw this.#closedError();
    this.#held = true;
    this.#holderScope = scope;
    return this.#connection;
  }

  async beginTransaction(
    connection: DatabaseConnection,
    settings: TransactionSettings,
  ): Promise<void> {
    let statement = 'begin';
    if (settings.isolationLevel || settings.accessMode) {
      statement = 'start transaction';
      if (settings.isolationLevel) statement += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode) statement += ` ${settings.accessMode}`;
    }
    await connection.executeQuery(CompiledQuery.raw(statement));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const result = await (connection as PGliteConnection).run('commit', []);
    // PostgreSQL answers COMMIT with a ROLLBACK tag when an earlier statement failed and
    // the transaction was already aborted (e.g. an error that the callback caught).
    if (result.command === 'ROLLBACK') throw new AbortedTransactionError();
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdent(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to savepoint ${quoteIdent(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release savepoint ${quoteIdent(name)}`));
  }

  async releaseConnection(): Promise<void> {
    this.#handOver();
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    // Let whoever holds the connection finish (e.g. a transaction mid-way), then close.
    if (this.#held) {
      await new Promise<void>((resolve) =>
        this.#waiters.push({ grant: resolve, timer: undefined }),
      );
    }
    // Anyone still queued is refused: acquireConnection sees #destroyed.
    for (const waiter of this.#waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.grant();
    }
    this.#held = false;
    const pglite = this.#pglite;
    this.#pglite = undefined;
    this.#connection = undefined;
    try {
      if (pglite && !pglite.closed) await pglite.close();
    } finally {
      await this.#config.onDestroy?.();
    }
  }

  #closedError(): DatabaseError {
    return new DatabaseError('ERR_DB_CLOSED', `${capitalize(this.#label)} is closed.`);
  }

  /** Waits in line for the connection; the previous holder hands it over directly. */
  #wait(): Promise<void> {
    const timeout = this.#config.acquireTimeoutMillis ?? DEFAULT_ACQUIRE_TIMEOUT_MS;
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, timer: undefined };
      if (timeout > 0) {
        waiter.timer = setTimeout(() => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(
            new DatabaseError(
              'ERR_DB_BUSY',
              `Gave up waiting ${timeout} ms for ${this.#label}: its single connection stayed busy. ` +
                'A transaction is either very long or deadlocked (for example, code inside it ' +
                'queried through db instead of trx).',
            ),
          );
        }, timeout);
        waiter.timer.unref();
      }
      this.#waiters.push(waiter);
    });
  }

  /** Passes the connection to the next in line, or marks it free. */
  #handOver(): void {
    const next = this.#waiters.shift();
    this.#holderScope = undefined;
    if (next) {
      clearTimeout(next.timer);
      // #held stays true: ownership moves straight to the waiter, nobody can cut in.
      next.grant();
    } else {
      this.#held = false;
    }
  }
}

const DML_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

class PGliteConnection implements DatabaseConnection {
  readonly #pglite: PGlite;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  /**
   * Without parameters, the simple query protocol (several statements allowed), as
   * node-postgres does; with parameters, the extended protocol (one statement).
   */
  async run(sql: string, parameters: readonly unknown[]): Promise<Results> {
    if (parameters.length === 0) {
      const results = await this.#pglite.exec(sql);
      return results.at(-1) ?? { rows: [], fields: [] };
    }
    return this.#pglite.query(sql, [...parameters]);
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.run(compiledQuery.sql, compiledQuery.parameters);
    const command = result.command?.toUpperCase();
    // Same shape as Kysely's node-postgres driver: affected rows only for DML statements.
    return {
      rows: result.rows as R[],
      numAffectedRows:
        command && DML_COMMANDS.has(command)
          ? BigInt(result.rowCount ?? result.affectedRows ?? 0)
          : undefined,
    };
  }

  /**
   * PGlite has no server-side cursors across calls, so this runs the query to completion
   * and yields the rows in chunks: the memory use of a plain query, the interface of a stream.
   */
  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
      throw new Error('chunkSize must be a positive integer');
    }
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let i = 0; i < rows.length; i += chunkSize) {
      yield { rows: rows.slice(i, i + chunkSize) };
    }
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
