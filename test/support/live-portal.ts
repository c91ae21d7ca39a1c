import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import * as client from 'openid-client';
import { loadConfig, type Config } from '../../src/config/config.js';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import type { Clock } from '../../src/platform/clock.js';
import type { KeyEncryptionKeyring } from '../../src/platform/crypto/index.js';
import { initPki, loadPki } from '../../src/platform/pki/index.js';
import { loadOrCreateAdminToken } from '../../src/platform/runtime/admin-token.js';
import {
  openServiceRuntime,
  type ServiceRuntime,
} from '../../src/platform/runtime/service-runtime.js';
import { buildPortalApp, type PortalApp } from '../../src/portal/app.js';
import type { PortalDB } from '../../src/portal/db.js';
import { portalMigrations } from '../../src/portal/migrations.js';
import { seedPortalPersonas } from '../../src/portal/personas.js';
import { freshDatabase, type FreshDatabase, type TestEngine } from './databases.js';
import { demoPorts } from './demo-process.js';
import { citizenApproves, partnerClient, pushedAuthorization } from './partner-client.js';

/** Real time moved forward on demand: oidc-provider keeps real time, the portal this one. */
export function shiftedClock(): Clock & { advance(ms: number): void } {
  let offset = 0;
  return {
    now: () => new Date(Date.now() + offset),
    advance: (ms) => {
      offset += ms;
    },
  };
}

export interface LivePortal {
  config: Config;
  runtime: ServiceRuntime<PortalDB>;
  app: PortalApp;
  database: FreshDatabase<PortalDB>;
  dataDir: string;
  portalUrl: string;
  mtlsUrl: string;
  adminToken: string;
  close(): Promise<void>;
}

/**
 * The portal built in this process the way `soglasie portal --demo` builds it (demo
 * personas, a partner CA, the admin API), listening on real ports, with an injected
 * clock; its KEK file lives in a temporary data directory unless a keyring is given.
 */
export async function startLivePortal(
  engine: TestEngine,
  opts: { clock?: Clock; keyring?: KeyEncryptionKeyring; env?: Record<string, string> } = {},
): Promise<LivePortal> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-live-'));
  const ports = await demoPorts();
  const config = loadConfig({
    SOGLASIE_MODE: 'demo',
    SOGLASIE_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    ...ports,
    ...opts.env,
  });
  const database = await freshDatabase<PortalDB>(engine);
  const runtime = await openServiceRuntime<PortalDB>({
    service: 'portal',
    config,
    migrations: portalMigrations,
    logger: pino({ level: 'silent' }),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.keyring ? { keyring: opts.keyring } : {}),
    database: database as never,
  });
  const pkiDir = path.join(dataDir, 'portal-pki');
  await initPki(pkiDir);
  const adminToken = loadOrCreateAdminToken(dataDir, 'portal');
  const app = await buildPortalApp(runtime, { pki: await loadPki(pkiDir), adminToken });
  await seedPortalPersonas(app.citizens, app.records);
  await app.listen({ host: '127.0.0.1', port: config.portal.httpPort });
  await app.partnerApi!.listen({ host: '127.0.0.1', port: config.portal.mtlsPort });
  return {
    config,
    runtime,
    app,
    database,
    dataDir,
    portalUrl: config.portal.publicUrl,
    mtlsUrl: config.portal.mtlsUrl,
    adminToken,
    close: async () => {
      await app.partnerApi!.close();
      await app.close();
      await runtime.close(); // closes (and on PostgreSQL drops) the fresh database
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A relying party registered with `partner add` on the live portal. */
export async function addPartner(portal: LivePortal, name = 'Банк') {
  const out = path.join(portal.dataDir, `partner-${Math.random().toString(36).slice(2)}`);
  await partnerAdd({
    portalAdminUrl: `http://127.0.0.1:${portal.config.portal.httpPort}`,
    adminToken: portal.adminToken,
    name,
    redirectUris: ['http://localhost:9/portal/callback'],
    out,
  });
  return { ...(await partnerClient(out)), dir: out };
}

/** The whole FAPI flow for Иванов: PAR, login, consent, code, tokens. */
export async function obtainTokens(
  portal: LivePortal,
  rp: Awaited<ReturnType<typeof partnerClient>>,
) {
  const { url, codeVerifier, state } = await pushedAuthorization(rp);
  const { callback } = await citizenApproves(portal.portalUrl, url);
  return client.authorizationCodeGrant(rp.config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
  });
}

/** The `kid` in a JWT's header. */
export function kidOf(jwt: string): string {
  return (JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as { kid: string })
    .kid;
}
