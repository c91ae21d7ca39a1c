import type { Logger } from 'pino';
import { DEMO_WARNING, type Config } from './config/config.js';
import { buildBankApp, type BankApp } from './bank/app.js';
import type { BankDB } from './bank/db.js';
import { bankMigrations } from './bank/migrations.js';
import { seedBankPersonas } from './bank/personas.js';
import { CLIENT_NUMBER_LABEL } from './bank/portal-access/portal-connect.js';
import { LINK_REQUEST } from './bank/portal-access/portal-link.service.js';
import { createLogger } from './platform/http/logger.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PARTNER_FILES, partnerAdd } from './partner-kit/partner-add.js';
import { initPki, loadPki } from './platform/pki/index.js';
import { loadOrCreateAdminToken, readAdminToken } from './platform/runtime/admin-token.js';
import { startHousekeeping } from './platform/runtime/housekeeping.js';
import {
  openServiceRuntime,
  type ServiceName,
  type ServiceRuntime,
} from './platform/runtime/service-runtime.js';
import { buildPortalApp, type PortalApp, type PortalOptions } from './portal/app.js';
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
  /** The portal's partner (mTLS) listener. */
  mtlsUrl?: string;
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
  return name === 'portal' ? startPortal(config, opts) : startBank(config, opts);
}

/** The portal: runtime, PKI, app, personas, both listeners, webhook worker, checkpoints. */
export async function startPortal(
  config: Config,
  opts: StartOptions & { anomaly?: PortalOptions['anomaly'] } = {},
): Promise<RunningService & { app: PortalApp; runtime: ServiceRuntime<PortalDB> }> {
  const logger = opts.logger ?? createLogger({ name: 'portal', level: config.logLevel });
  if (config.demo) logger.warn(DEMO_WARNING);
  const runtime = await openServiceRuntime<PortalDB>({
    service: 'portal',
    config,
    migrations: portalMigrations,
    logger,
  });
  try {
    const pkiDir = path.join(config.dataDir, 'portal-pki');
    // Outside production the sandbox makes its own CA on first start; production
    // expects `soglasie pki init` (or real certificates) to have run.
    if (config.mode !== 'production') await initPki(pkiDir);
    const pki = await loadPki(pkiDir);
    const app = await buildPortalApp(runtime, {
      pki,
      adminToken: loadOrCreateAdminToken(config.dataDir, 'portal'),
      anomaly: opts.anomaly,
    });
    const seeded =
      opts.seed && config.demo ? await seedPortalPersonas(app.citizens, app.records) : [];
    const service = await listen(
      'portal',
      app,
      withHousekeeping(runtime, (now) => app.sweepExpired(now)),
      config.host,
      config.portal.httpPort,
      seeded,
    );
    try {
      await app.partnerApi!.listen({ host: config.host, port: config.portal.mtlsPort });
    } catch (err) {
      await service.close();
      throw err;
    }
    const mtlsPort = (app.partnerApi!.server.address() as { port: number }).port;
    // Delivers queued partner events; any number of instances may run one.
    const stopWorker = app.webhooks.startWorker({ logger: runtime.logger });
    // Signs a checkpoint of the audit log every 10 s when it grew, and a last one at stop.
    const stopCheckpoints = app.auditTree.startPublishing({ logger: runtime.logger });
    return {
      ...service,
      app,
      runtime,
      mtlsUrl: `https://localhost:${mtlsPort}`,
      close: async () => {
        await stopWorker();
        await app.partnerApi!.close();
        await stopCheckpoints();
        await service.close();
      },
    };
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/** The bank: runtime, app, personas, its web listener. */
export async function startBank(
  config: Config,
  opts: StartOptions = {},
): Promise<RunningService & { app: BankApp; runtime: ServiceRuntime<BankDB> }> {
  const logger = opts.logger ?? createLogger({ name: 'bank', level: config.logLevel });
  if (config.demo) logger.warn(DEMO_WARNING);
  const runtime = await openServiceRuntime<BankDB>({
    service: 'bank',
    config,
    migrations: bankMigrations,
    logger,
  });
  try {
    const app = await buildBankApp(runtime);
    const seeded = opts.seed && config.demo ? await seedBankPersonas(app.customers) : [];
    const service = await listen(
      'bank',
      app,
      withHousekeeping(runtime),
      config.host,
      config.bank.httpPort,
      seeded,
    );
    return { ...service, app, runtime };
  } catch (err) {
    await runtime.close();
    throw err;
  }
}

/** Starts the periodic sweep of expired rows; returns the runtime's close, which stops it. */
function withHousekeeping<DB>(
  runtime: ServiceRuntime<DB>,
  extra?: (now: Date) => Promise<Record<string, number>>,
): () => Promise<void> {
  const stop = startHousekeeping({
    db: runtime.db as never,
    clock: runtime.clock,
    logger: runtime.logger,
    extra,
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

/**
 * Demo mode registers the demo bank with the portal the way any partner joins:
 * `partner add` against the running portal, once; the files stay in the data directory.
 */
export async function registerDemoBank(config: Config, portal: RunningService): Promise<boolean> {
  const redirectUri = `${config.bank.publicUrl}/portal/callback`;
  const clientJson = path.join(config.bank.partnerDir, PARTNER_FILES.clientJson);
  if (existsSync(clientJson)) {
    const registered = JSON.parse(readFileSync(clientJson, 'utf8')) as {
      issuer?: string;
      redirect_uris?: string[];
      portal_connect?: boolean;
    };
    // Registered for these very addresses: nothing to do. After a port change the old
    // registration would fail at the redirect URI check, so register afresh.
    if (
      registered.issuer === config.portal.publicUrl &&
      registered.redirect_uris?.[0] === redirectUri &&
      registered.portal_connect === true
    ) {
      return false;
    }
  }
  await partnerAdd({
    portalAdminUrl: `http://127.0.0.1:${portal.port}`,
    adminToken: readAdminToken(config.dataDir, 'portal'),
    name: 'Банк',
    redirectUris: [redirectUri],
    out: config.bank.partnerDir,
    // J1: citizens can connect the bank from the portal by their bank client number.
    portalConnect: { client_ref_label: CLIENT_NUMBER_LABEL, request: LINK_REQUEST },
  });
  return true;
}
