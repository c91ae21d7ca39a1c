import path from 'node:path';

/**
 * The only place that reads the environment. Every problem is collected and reported
 * at once, in plain words, and the result is frozen so nothing changes it later.
 */

export type Mode = 'demo' | 'production' | 'test';

export interface ServiceConfig {
  /** Port for the browser-facing HTTP listener. */
  readonly httpPort: number;
  /** PostgreSQL URL; undefined means the embedded PGlite database in the data dir. */
  readonly databaseUrl: string | undefined;
  /** Public base URL as the browser sees it, e.g. http://localhost:3000. */
  readonly publicUrl: string;
}

export interface Config {
  readonly mode: Mode;
  /** Demo conveniences: dev outbox, demo personas, plain HTTP on loopback. */
  readonly demo: boolean;
  readonly nodeEnv: string;
  readonly host: string;
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Proxy addresses whose X-Forwarded-For is trusted; empty trusts none. */
  readonly trustedProxies: readonly string[];
  /** Rate limits on the partner API and the IP blocks they lead to (docs/rate-limits.md). */
  readonly partnerRateLimit: PartnerRateLimitConfig;
  readonly portal: ServiceConfig & {
    readonly mtlsPort: number;
    /** Public base URL of the partner (mTLS) listener, e.g. https://localhost:3443. */
    readonly mtlsUrl: string;
  };
  readonly bank: ServiceConfig & {
    /** Where the bank keeps what `soglasie partner add` wrote for it (client.json, keys, certs). */
    readonly partnerDir: string;
    /** The portal's issuer as the bank reaches it. */
    readonly portalIssuer: string;
  };
}

export interface PartnerRateLimitConfig {
  /** Requests a partner may make per window, unless its `partners.rate_limit` says otherwise. */
  readonly requests: number;
  readonly windowSeconds: number;
  /**
   * Extra requests a partner may make over its limit within ten windows, in percent of
   * the limit: absorbs the jitter of a client sending just under it (0 turns it off).
   */
  readonly burstPercent: number;
  /** Refusals (429) to one source IP within `blockWindowSeconds` that block that IP… */
  readonly blockAfter: number;
  readonly blockWindowSeconds: number;
  /** …for this long (403 IP_BLOCKED), unless a security analyst lifts the block sooner. */
  readonly blockSeconds: number;
  /** Prefix of the counters' keys, so deployments (or test runs) sharing a Redis keep apart. */
  readonly keyPrefix: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG';
  constructor(readonly problems: readonly string[]) {
    super(
      `The configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface ConfigDefaults {
  /** The mode when SOGLASIE_MODE is not set (the `demo` command defaults to demo). */
  mode?: Mode;
  /** Commands that do not serve pages (migrate) need no public https addresses. */
  serving?: boolean;
}

export function loadConfig(env: Env, defaults: ConfigDefaults = {}): Config {
  const problems: string[] = [];
  const nodeEnv = env.NODE_ENV ?? 'development';

  const mode = readMode(env.SOGLASIE_MODE ?? defaults.mode ?? 'production', problems);
  if (mode !== 'production' && nodeEnv === 'production') {
    problems.push(
      `SOGLASIE_MODE=${mode} is refused when NODE_ENV=production: it exposes the dev outbox and demo logins.`,
    );
  }

  const port = (name: string, fallback: number) => readPort(env, name, fallback, problems);
  const portalHttp = port('PORTAL_HTTP_PORT', 3000);
  const portalMtls = port('PORTAL_MTLS_PORT', 3443);
  const bankHttp = port('BANK_HTTP_PORT', 4000);
  const ports = [portalHttp, portalMtls, bankHttp].filter((p) => p !== 0);
  if (new Set(ports).size !== ports.length) {
    problems.push(
      `PORTAL_HTTP_PORT, PORTAL_MTLS_PORT and BANK_HTTP_PORT must differ (got ${portalHttp}, ${portalMtls}, ${bankHttp}).`,
    );
  }

  const host = env.SOGLASIE_HOST ?? (mode === 'production' ? '0.0.0.0' : '127.0.0.1');
  const dataDir = path.resolve(env.SOGLASIE_DATA_DIR ?? './data');

  const portalDb = readDatabaseUrl(env, 'PORTAL_DATABASE_URL', problems);
  const bankDb = readDatabaseUrl(env, 'BANK_DATABASE_URL', problems);
  if (portalDb && bankDb && portalDb === bankDb) {
    problems.push(
      'PORTAL_DATABASE_URL and BANK_DATABASE_URL point at the same database: the portal and the bank are different organizations and need separate databases.',
    );
  }
  const redisUrl = readUrl(env, 'REDIS_URL', ['redis:', 'rediss:'], problems);

  // Demo is for a person at a terminal: request lines would drown the printed logins.
  const logLevel = (env.LOG_LEVEL ?? (mode === 'demo' ? 'warn' : 'info')) as Config['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${env.LOG_LEVEL}").`);
  }

  const trustedProxies = (env.TRUSTED_PROXIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

  const count = (name: string, fallback: number, max: number, min = 1) =>
    readCount(env, name, fallback, max, problems, min);
  const partnerRateLimit: PartnerRateLimitConfig = {
    requests: count('PARTNER_RATE_LIMIT', 100, 1_000_000_000),
    windowSeconds: count('PARTNER_RATE_WINDOW', 1, 3600),
    burstPercent: count('PARTNER_RATE_BURST', 10, 100, 0),
    blockAfter: count('PARTNER_BLOCK_AFTER', 600, 1_000_000_000),
    blockWindowSeconds: count('PARTNER_BLOCK_WINDOW', 60, 86_400),
    blockSeconds: count('PARTNER_BLOCK_DURATION', 900, 30 * 86_400),
    keyPrefix: env.RATE_LIMIT_KEY_PREFIX || 'soglasie',
  };
  if (!/^[\w.:-]{1,64}$/.test(partnerRateLimit.keyPrefix)) {
    problems.push(
      'RATE_LIMIT_KEY_PREFIX may hold only letters, digits and . _ : - (at most 64 characters).',
    );
  }

  const portalPublic =
    readUrl(env, 'PORTAL_PUBLIC_URL', ['http:', 'https:'], problems) ??
    `http://localhost:${portalHttp}`;
  const bankPublic =
    readUrl(env, 'BANK_PUBLIC_URL', ['http:', 'https:'], problems) ??
    `http://localhost:${bankHttp}`;
  const portalMtlsPublic =
    readUrl(env, 'PORTAL_MTLS_PUBLIC_URL', ['https:'], problems) ??
    `https://localhost:${portalMtls}`;
  if (mode === 'production' && defaults.serving !== false) {
    for (const [name, url] of [
      ['PORTAL_PUBLIC_URL', portalPublic],
      ['BANK_PUBLIC_URL', bankPublic],
    ] as const) {
      if (!url.startsWith('https:')) {
        problems.push(`${name} must be an https:// address outside demo mode (got "${url}").`);
      }
    }
  }

  if (problems.length > 0) throw new ConfigError(problems);

  return deepFreeze({
    mode,
    demo: mode === 'demo',
    nodeEnv,
    host,
    dataDir,
    redisUrl,
    logLevel,
    trustedProxies,
    partnerRateLimit,
    portal: {
      httpPort: portalHttp,
      mtlsPort: portalMtls,
      mtlsUrl: portalMtlsPublic,
      databaseUrl: portalDb,
      publicUrl: portalPublic,
    },
    bank: {
      httpPort: bankHttp,
      databaseUrl: bankDb,
      publicUrl: bankPublic,
      partnerDir: path.resolve(env.BANK_PORTAL_PARTNER_DIR ?? path.join(dataDir, 'bank-partner')),
      portalIssuer:
        readUrl(env, 'BANK_PORTAL_ISSUER', ['http:', 'https:'], problems) ?? portalPublic,
    },
  });
}

function readMode(value: string, problems: string[]): Mode {
  if (value === 'demo' || value === 'production' || value === 'test') return value;
  problems.push(`SOGLASIE_MODE must be demo, production or test (got "${value}").`);
  return 'production';
}

function readPort(env: Env, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  // 0 asks the OS for a free port; tests use it.
  if (!/^\d+$/.test(raw) || !Number.isInteger(n) || n < 0 || n > 65535) {
    problems.push(`${name} must be a port number between 0 and 65535 (got "${raw}").`);
    return fallback;
  }
  return n;
}

/** A whole number from `min` to `max`. */
function readCount(
  env: Env,
  name: string,
  fallback: number,
  max: number,
  problems: string[],
  min = 1,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}").`);
    return fallback;
  }
  return n;
}

function readDatabaseUrl(env: Env, name: string, problems: string[]): string | undefined {
  return readUrl(env, name, ['postgres:', 'postgresql:'], problems);
}

function readUrl(
  env: Env,
  name: string,
  protocols: readonly string[],
  problems: string[],
): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push(`${name} is not a valid URL.`);
    return undefined;
  }
  if (!protocols.includes(url.protocol)) {
    // Never echo the value: it may carry a password.
    problems.push(`${name} must start with ${protocols.map((p) => `${p}//`).join(' or ')}.`);
    return undefined;
  }
  return raw.replace(/\/+$/, '');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The loud warning demo mode prints at start. */
export const DEMO_WARNING =
  '!!! DEMO MODE: demo logins, a dev outbox that shows one-time codes, plain HTTP. ' +
  'Never expose this to a network or use real personal data. !!!';
