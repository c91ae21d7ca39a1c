import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import type { BankApp } from '../src/bank/app.js';
import type { BankDB } from '../src/bank/db.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { createLogger } from '../src/platform/http/logger.js';
import { loadPki, type Pki } from '../src/platform/pki/index.js';
import type { ServiceRuntime } from '../src/platform/runtime/service-runtime.js';
import type { PortalApp } from '../src/portal/app.js';
import { registerDemoBank, startBank, startPortal, type RunningService } from '../src/services.js';
import { demoPorts } from '../test/support/demo-process.js';
import {
  citizenApproves,
  partnerClient,
  pushedAuthorization,
} from '../test/support/partner-client.js';
import { createBenchDatabase } from './postgres.js';

/** The partner's files (`partner add` wrote them) that a load generator needs. */
export interface PartnerMaterial {
  clientId: string;
  issuer: string;
  ca: string;
  cert: string;
  key: string;
  /** Private JWK for private_key_jwt client assertions. */
  signingJwk: Record<string, unknown>;
}

export type { PortalApp };

export interface BenchServices {
  config: Config;
  /** 'PGlite (in process)' or 'PostgreSQL'. */
  database: string;
  portal: RunningService & { app: PortalApp };
  bank: RunningService & { app: BankApp; runtime: ServiceRuntime<BankDB> };
  pki: Pki;
  partner: PartnerMaterial;
  /** Origin of the mTLS listener, e.g. https://localhost:41234. */
  mtlsOrigin: string;
  tokenEndpoint: string;
  accessToken: string;
  refreshToken: string;
  sub: string;
  close(): Promise<void>;
}

/**
 * The demo, in this process: portal (seeded) and bank on free loopback ports with a
 * temporary data directory, the bank registered as a partner, and one real consent
 * obtained through PAR → login → consent → code → token with openid-client.
 *
 * The databases are the demo's embedded PGlite, or, given `postgresAdminUrl`, two new
 * databases on that PostgreSQL server, dropped again by close().
 */
export async function startBenchServices(
  opts: { postgresAdminUrl?: string | undefined } = {},
): Promise<BenchServices> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-bench-'));
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const databases: Record<string, string> = {};
    if (opts.postgresAdminUrl) {
      for (const name of ['PORTAL_DATABASE_URL', 'BANK_DATABASE_URL']) {
        const db = await createBenchDatabase(opts.postgresAdminUrl);
        closers.unshift(() => db.drop()); // dropped last, after the services closed
        databases[name] = db.url;
      }
    }
    const config = loadConfig(
      {
        ...databases,
        SOGLASIE_MODE: 'demo',
        NODE_ENV: 'development',
        SOGLASIE_DATA_DIR: dataDir,
        SOGLASIE_HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        ...(await demoPorts()),
      },
      { mode: 'demo' },
    );
    const silent = (name: string) => createLogger({ name, level: 'silent' });
    const portal = await startPortal(config, {
      seed: true,
      logger: silent('portal'),
      // The bench reads one consent thousands of times a second on purpose and probes a
      // foreign oid: the anomaly rules would (rightly) pause it. Their cost stays measured:
      // every read still goes through the rules, they only never fire.
      anomaly: {
        rules: {
          request_frequency: { maxReadsPerMinute: 1_000_000 },
          subject_mismatch: { actions: [] },
        },
      },
    });
    closers.push(() => portal.close());
    await registerDemoBank(config, portal);
    // The throughput rows measure the rate limiter's cost on every request but must never
    // meet its limit: the demo bank gets a limit of its own, far above any load here. The
    // rate-limit phase (bench/rate-limit.ts) uses partners at the default (100/s).
    const bankClient = JSON.parse(
      readFileSync(path.join(config.bank.partnerDir, 'client.json'), 'utf8'),
    ) as { client_id: string };
    await portal.app.partners!.setRateLimit(bankClient.client_id, 1_000_000_000);
    const bank = await startBank(config, { seed: true, logger: silent('bank') });
    closers.push(() => bank.close());

    const pki = await loadPki(path.join(dataDir, 'portal-pki'));
    const rp = await partnerClient(config.bank.partnerDir);
    closers.push(() => rp.close());

    const { url, codeVerifier, state } = await pushedAuthorization(rp);
    const { callback } = await citizenApproves(portal.url, url);
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    if (!tokens.refresh_token) throw new Error('the token response carries no refresh token');

    const read = (name: string) => readFileSync(path.join(config.bank.partnerDir, name), 'utf8');
    const tokenEndpoint = rp.info.mtls_endpoints.token_endpoint!;
    return {
      config,
      database: opts.postgresAdminUrl ? 'PostgreSQL' : 'PGlite (in process)',
      portal,
      bank,
      pki,
      partner: {
        clientId: rp.info.client_id,
        issuer: rp.info.issuer,
        ca: read('ca.pem'),
        cert: read('client-cert.pem'),
        key: read('client-key.pem'),
        signingJwk: JSON.parse(read('signing-key.jwk.json')) as Record<string, unknown>,
      },
      mtlsOrigin: new URL(tokenEndpoint).origin,
      tokenEndpoint,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      sub: tokens.claims()!.sub,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
