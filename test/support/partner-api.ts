import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import pino from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadConfig } from '../../src/config/config.js';
import { manualClock } from '../../src/platform/clock.js';
import { memoryKeyring } from '../../src/platform/crypto/index.js';
import {
  createCertificateSigningRequest,
  initPki,
  loadPki,
  type Pki,
} from '../../src/platform/pki/index.js';
import { openServiceRuntime } from '../../src/platform/runtime/service-runtime.js';
import { buildPortalApp, type PortalApp } from '../../src/portal/app.js';
import type { PortalDB } from '../../src/portal/db.js';
import { portalMigrations } from '../../src/portal/migrations.js';
import { seedPortalPersonas } from '../../src/portal/personas.js';
import { freshDatabase, type TestEngine } from './databases.js';

/**
 * The portal with its partner listener on a real mTLS port (the partner CA in a temporary
 * directory), the demo personas, a frozen clock and the given environment on top of test
 * mode, e.g. `{ PARTNER_RATE_LIMIT: '5' }`. For tests of what happens before the
 * handlers: rate limits, IP blocks, client addresses.
 */
export async function testPartnerApi(engine: TestEngine, env: Record<string, string> = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-partner-api-'));
  await initPki(dir);
  const pki = await loadPki(dir);
  const clock = manualClock('2026-12-01T09:00:00Z');
  const database = await freshDatabase<PortalDB>(engine);
  const runtime = await openServiceRuntime<PortalDB>({
    service: 'portal',
    config: loadConfig({ SOGLASIE_MODE: 'test', SOGLASIE_DATA_DIR: '/nonexistent', ...env }),
    migrations: portalMigrations,
    logger: pino({ level: 'silent' }),
    clock,
    keyring: memoryKeyring(),
    database: database as never,
  });
  const app = await buildPortalApp(runtime, { pki });
  await seedPortalPersonas(app.citizens, app.records);
  await app.partnerApi!.listen({ host: '127.0.0.1', port: 0 });
  const base = `https://127.0.0.1:${(app.partnerApi!.server.address() as AddressInfo).port}`;
  const partners: PartnerCaller[] = [];
  return {
    app,
    runtime,
    clock,
    pki,
    base,
    /** A partner registered as `partner add` would, calling with its own certificate. */
    async partner(name: string, opts: { rateLimit?: number } = {}) {
      const caller = await registerPartner(app, pki, base, name, opts);
      partners.push(caller);
      return caller;
    },
    async close() {
      for (const p of partners) await p.agent.close();
      await app.partnerApi?.close();
      await app.close();
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type PartnerCaller = Awaited<ReturnType<typeof registerPartner>>;

export async function registerPartner(
  app: PortalApp,
  pki: Pki,
  base: string,
  name: string,
  opts: { rateLimit?: number } = {},
) {
  const { csrPem, keyPem } = await createCertificateSigningRequest({ commonName: name });
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk = { ...(await exportJWK(publicKey)), kid: `${name}-1`, alg: 'ES256' };
  const { clientId, certPem } = await app.partners!.register({
    name,
    redirectUris: [`https://${name}.test/callback`],
    signingJwk,
    csrPem,
    rateLimit: opts.rateLimit,
  });
  const agent = new Agent({ connect: { ca: pki.caPem, cert: certPem, key: keyPem } });
  return {
    name,
    clientId,
    certPem,
    keyPem,
    agent,
    /** A GET on the partner listener (`base` by default) with this partner's certificate. */
    get: (pathname: string, headers: Record<string, string> = {}, at = base) =>
      undiciFetch(`${at}${pathname}`, { headers, dispatcher: agent }),
  };
}

/** Statuses of `n` GETs made one after the other. */
export async function statuses(
  get: () => Promise<{ status: number; text(): Promise<string> }>,
  n: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await get();
    await res.text();
    out.push(res.status);
  }
  return out;
}
