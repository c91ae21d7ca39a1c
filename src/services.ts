import type { Logger } from 'pino';
import { DEMO_WARNING, type Config } from './config/config.js';
import { buildBankApp } from './bank/app.js';
import type { BankDB } from './bank/db.js';
import { bankMigrations } from './bank/migrations.js';
import { seedBankPersonas } from './bank/personas.js';
import { createLogger } from './platform/http/logger.js';
import { startHousekeeping } from './platform/runtime/housekeeping.js';
import {
  openServiceRuntime,
  type ServiceName,
  type ServiceRuntime,
} from './platform/runtime/service-runtime.js';
import { buildPortalApp } from './portal/app.js';
import type { PortalDB } from './portal/db.js';
import { portalMigrations } from './portal/migrations.js';
import { seedPortalPersonas } from './portal/personas.js';

/**
 * Composition root: wires a service's runtime and app from the configuration. The CLI
 * and the end-to-end tests both start services through here, so they start the same way.
 */
export interface RunningService {
  name: ServiceName;
  url: string;
  port: number;
  seeded: string[];
  close(): Promise<void>;
}

export interface StartOptions {
  /** Seed the demo personas (demo mode only). */
  seed?: boolean;
  logger?: Logger;
}

export async function startService(
  name: ServiceName,
  config: Config,
  opts: StartOptions = {},
): Promise<RunningService> {
  const logger = opts.logger ?? createLogger({ name, level: config.logLevel });
  if (config.demo) logger.warn(DEMO_WARNING);
  const port = config[name].httpPort;

  if (name === 'portal') {
    const runtime = await openServiceRuntime<PortalDB>({
      service: 'portal',
      config,
      migrations: portalMigrations,
      logger,
    });
    try {
      const app = await buildPortalApp(runtime);
      const seeded = opts.seed && config.demo ? await seedPortalPersonas(app.citizens) : [];
      return await listen(name, app, withHousekeeping(runtime), config.host, port, seeded);
    } catch (err) {
      await runtime.close();
      throw err;
    }
  }
  const runtime = await openServiceRuntime<BankDB>({
    service: 'bank',
    config,
    migrations: bankMigrations,
    logger,
  });
  try {
    const app = await buildBankApp(runtime);
    const seeded = opts.seed && config.demo ? await seedBankPersonas(app.customers) : [];
    return await listen(name, app, withHousekeeping(runtime), config.host, port, seeded);
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/** Starts the periodic sweep of expired rows; returns the runtime's close, which stops it. */
function withHousekeeping<DB>(runtime: ServiceRuntime<DB>): () => Promise<void> {
  const stop = startHousekeeping({
    db: runtime.db as never,
    clock: runtime.clock,
    logger: runtime.logger,
  });
  return async () => {
    stop();
    await runtime.close();
  };
}

async function listen(
  name: ServiceName,
  app: {
    listen(o: { host: string; port: number }): Promise<string>;
    close(): Promise<void>;
    server: { address(): unknown };
  },
  closeRuntime: () => Promise<void>,
  host: string,
  port: number,
  seeded: string[],
): Promise<RunningService> {
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close();
    throw err;
  }
  const address = app.server.address() as { port: number };
  const shownHost = host === '127.0.0.1' || host === '0.0.0.0' ? 'localhost' : host;
  return {
    name,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    seeded,
    close: async () => {
      await app.close();
      await closeRuntime();
    },
  };
}
