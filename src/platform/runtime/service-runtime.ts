import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import { systemClock, type Clock } from '../clock.js';
import {
  createSealer,
  openLiveFileKeyring,
  type KeyEncryptionKeyring,
  type Sealer,
} from '../crypto/index.js';
import { migrateToLatest, openDatabase, type Database, type Migration } from '../db/index.js';
import { AppError } from '../http/errors.js';
import { randomIds, type IdGenerator } from '../ids.js';
import { createDevOutbox, type DevOutbox, type Notifier } from '../notify/notifier.js';
import { loadOrCreateServiceKey, type ServiceKeyTables } from './service-keys.js';

export type ServiceName = 'portal' | 'bank';

/** Everything a service's handlers depend on, real in production and fakes in tests. */
export interface ServiceRuntime<DB> {
  service: ServiceName;
  config: Config;
  database: Database<DB>;
  db: Kysely<DB>;
  keyring: KeyEncryptionKeyring;
  sealer: Sealer;
  /** Key for lookup hashes of encrypted identifiers. */
  lookupKey: Buffer;
  clock: Clock;
  ids: IdGenerator;
  notifier: Notifier;
  /** Present in demo and test modes only. */
  outbox: DevOutbox | undefined;
  logger: Logger;
  close(): Promise<void>;
}

export interface OpenRuntimeOptions<DB> {
  service: ServiceName;
  config: Config;
  migrations: Record<string, Migration>;
  logger: Logger;
  clock?: Clock;
  ids?: IdGenerator;
  /** Injected by tests; otherwise the KEK file in the data dir. */
  keyring?: KeyEncryptionKeyring;
  /** Injected by tests; otherwise the configured database. */
  database?: Database<DB>;
}

export async function openServiceRuntime<DB>(
  opts: OpenRuntimeOptions<DB>,
): Promise<ServiceRuntime<DB>> {
  const { service, config, logger } = opts;
  const serviceConfig = config[service];

  if (!opts.keyring || (!opts.database && !serviceConfig.databaseUrl)) {
    ensureDataDir(config.dataDir);
  }
  const clock = opts.clock ?? systemClock;
  // The live keyring follows the file, so a running service takes part in a KEK rotation
  // done by `soglasie keys rotate` in another process (docs/keys.md).
  const keyring =
    opts.keyring ??
    (await openLiveFileKeyring(kekFilePath(config.dataDir, service), {
      onReloadError: (err) => logger.error({ err }, 'cannot re-read the KEK file'),
    }));
  const database =
    opts.database ??
    (await openDatabase<DB>({
      name: service,
      url: serviceConfig.databaseUrl,
      dataDir: serviceConfig.databaseUrl ? undefined : path.join(config.dataDir, `${service}-db`),
    }));
  try {
    const applied = await migrateToLatest(database, opts.migrations);
    if (applied.length > 0) logger.info({ applied }, 'database migrated');
    const lookupKey = await loadOrCreateServiceKey(
      database.db as unknown as Kysely<ServiceKeyTables>,
      keyring,
      'lookup-hash',
      clock.now(),
    );
    const outbox = config.mode === 'production' ? undefined : createDevOutbox(clock);
    return {
      service,
      config,
      database,
      db: database.db,
      keyring,
      sealer: createSealer(keyring),
      lookupKey,
      clock,
      ids: opts.ids ?? randomIds,
      notifier: outbox ?? unconfiguredGateway,
      outbox,
      logger,
      close: () => database.close(),
    };
  } catch (err) {
    await database.close();
    throw err;
  }
}

/** `<data dir>/<service>-kek.json`: the service's key-encryption keys. */
export function kekFilePath(dataDir: string, service: ServiceName): string {
  return path.join(dataDir, `${service}-kek.json`);
}

export class DataDirError extends Error {
  readonly code = 'ERR_DATA_DIR';
}

function ensureDataDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code;
    const why =
      reason === 'EEXIST' || reason === 'ENOTDIR'
        ? 'it exists but is not a directory'
        : reason === 'EACCES' || reason === 'EPERM'
          ? 'permission denied'
          : `it cannot be created (${reason ?? 'unknown error'})`;
    throw new DataDirError(
      `The data directory ${dir} is unusable: ${why}. Set SOGLASIE_DATA_DIR to a writable directory.`,
    );
  }
}

/**
 * Outside demo there is no SMS or mail gateway yet: saying so is better than pretending
 * a code was sent.
 */
const unconfiguredGateway: Notifier = {
  async send() {
    throw new AppError(
      'NOTIFICATION_GATEWAY_MISSING',
      503,
      'No SMS or e-mail gateway is configured.',
      'Не удалось отправить сообщение: сервис уведомлений не настроен.',
    );
  },
};
