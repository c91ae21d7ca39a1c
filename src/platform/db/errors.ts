/**
 * Typed database errors with messages an operator can act on. A message never contains a
 * password: database URLs only ever appear through {@link redactDatabaseUrl}.
 */

export type DatabaseErrorCode =
  /** The PostgreSQL server could not be reached, or refused us (auth, missing database). */
  | 'ERR_DB_UNREACHABLE'
  /** The PGlite data directory is unusable: not a directory, not writable, corrupt, in use. */
  | 'ERR_DB_DATA_DIR'
  /** A migration failed; nothing from it was applied. */
  | 'ERR_DB_MIGRATION'
  /** The database URL itself is malformed (not a postgres:// URL). */
  | 'ERR_DB_CONFIG'
  /** A query waited too long for the single PGlite connection, or would have deadlocked. */
  | 'ERR_DB_BUSY'
  /** The database was closed, and then used. */
  | 'ERR_DB_CLOSED';

export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  readonly code: DatabaseErrorCode;
  /** For ERR_DB_MIGRATION: the migration that failed, when one did. */
  readonly migrationName: string | undefined;

  constructor(
    code: DatabaseErrorCode,
    message: string,
    options: { cause?: unknown; migrationName?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.migrationName = options.migrationName;
  }
}

export function isDatabaseError(err: unknown, code?: DatabaseErrorCode): err is DatabaseError {
  return err instanceof DatabaseError && (code === undefined || err.code === code);
}

const PASSWORD_PARAMS = /^(password|sslpassword|sslkey|passfile)$/i;

/**
 * The URL with its password (and password-like query parameters) replaced by `***`, safe
 * for logs and error messages. Something that does not parse as a URL is not echoed at all.
 */
export function redactDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<unparseable database URL>';
  }
  // 'user:secret@host/db' parses as an opaque URL of scheme "user:"; do not echo those.
  if (!parsed.host) return '<unparseable database URL>';
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (PASSWORD_PARAMS.test(key)) parsed.searchParams.set(key, '***');
  }
  // URLSearchParams percent-encodes '*'; keep the marker readable.
  return parsed.toString().replace(/%2A%2A%2A/g, '***');
}

/** `host:port` of a postgres URL, for messages (no user, no password, no database). */
export function databaseAddress(url: string): string {
  try {
    const parsed = new URL(url);
    const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
    return `${host}:${parsed.port || '5432'}`;
  } catch {
    return '<unparseable database URL>';
  }
}

/** The SQLSTATE of a PostgreSQL error (the same on PGlite and on node-postgres), if any. */
export function sqlState(err: unknown): string | undefined {
  // Node system errors (EPERM, ...) also carry a short upper-case `code`, with a `syscall`.
  if (err && typeof err === 'object' && 'code' in err && !('syscall' in err)) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** True for a unique-constraint violation (SQLSTATE 23505) on either engine. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (sqlState(err) !== '23505') return false;
  return constraint === undefined || (err as { constraint?: unknown }).constraint === constraint;
}
