import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import { readAdminToken } from '../../src/platform/runtime/admin-token.js';
import { freshPostgresUrl } from '../support/databases.js';
import { freePorts, HttpClient } from '../support/demo-process.js';
import {
  startPortalProcess,
  stopPortalProcess,
  type PortalProcess,
} from '../support/portal-process.js';
import { outboxCode } from '../support/partner-client.js';

/*
 * ARCHITECTURE.md's scale-out for rate limits: two `soglasie portal` processes on ONE
 * PostgreSQL database (as behind a load balancer) enforce ONE limit per partner and honour
 * each other's IP blocks — with the counters in PostgreSQL, and in Redis when
 * TEST_REDIS_URL is set. PostgreSQL only: an embedded database belongs to one process.
 */

const PASSWORD = 'Demo-Passw0rd!';
const LIMIT = 10;
const BLOCK_AFTER = 6;

type Instance = PortalProcess;
const stopInstance = stopPortalProcess;

async function startInstance(env: Record<string, string>): Promise<Instance> {
  const [http, mtls] = await freePorts(2);
  return startPortalProcess('rate-limited', { http: http!, mtls: mtls! }, env);
}

/** The security analyst, signed in on one instance over HTTP. */
async function analystOn(instance: Instance) {
  const browser = new HttpClient(instance.url);
  const login = await browser.request('/login');
  const sent = await browser.request('/login', {
    form: { _csrf: HttpClient.csrf(login.body), username: 'security', password: PASSWORD },
  });
  const codePage = await browser.request(sent.location!);
  await browser.request('/login/code', {
    form: {
      _csrf: HttpClient.csrf(codePage.body),
      code: await outboxCode(instance.url, '+79990000010'),
    },
  });
  return browser;
}

const stores = [
  { store: 'postgres' },
  ...(process.env.TEST_REDIS_URL ? [{ store: 'redis', redisUrl: process.env.TEST_REDIS_URL }] : []),
];

describe.runIf(process.env.TEST_DATABASE_URL).each(stores)(
  'two portal instances on one PostgreSQL, counters in $store',
  ({ redisUrl }) => {
    const prefix = `soglasie-test-${randomBytes(6).toString('hex')}`;
    let database: { url: string; drop(): Promise<void> };
    let dataDir: string;
    let a: Instance;
    let b: Instance;
    const agents: Agent[] = [];

    /** A partner registered through A's admin API, with its own certificate. */
    async function partner(name: string) {
      const out = path.join(dataDir, name);
      await partnerAdd({
        portalAdminUrl: a.url.replace('localhost', '127.0.0.1'),
        adminToken: readAdminToken(dataDir, 'portal'),
        name,
        redirectUris: ['http://localhost:4999/callback'],
        out,
      });
      const read = (file: string) => readFileSync(path.join(out, file), 'utf8');
      const agent = new Agent({
        connect: { ca: read('ca.pem'), cert: read('client-cert.pem'), key: read('client-key.pem') },
      });
      agents.push(agent);
      return async (instance: Instance) => {
        const res = await undiciFetch(`${instance.mtlsUrl}/status`, { dispatcher: agent });
        const body = (await res.json()) as { code?: string };
        return { status: res.status, code: body.code };
      };
    }

    beforeAll(async () => {
      database = await freshPostgresUrl();
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-rl-'));
      const [http, mtls] = await freePorts(2);
      const env = {
        SOGLASIE_DATA_DIR: dataDir,
        PORTAL_DATABASE_URL: database.url,
        PORTAL_PUBLIC_URL: `http://localhost:${http}`,
        PORTAL_MTLS_PUBLIC_URL: `https://localhost:${mtls}`,
        LOG_LEVEL: 'error',
        // Long windows: the counts below do not depend on timing.
        PARTNER_RATE_LIMIT: String(LIMIT),
        PARTNER_RATE_WINDOW: '600',
        PARTNER_RATE_BURST: '0',
        PARTNER_BLOCK_AFTER: String(BLOCK_AFTER),
        PARTNER_BLOCK_WINDOW: '600',
        PARTNER_BLOCK_DURATION: '600',
        ...(redisUrl ? { REDIS_URL: redisUrl, RATE_LIMIT_KEY_PREFIX: prefix } : {}),
      };
      // One after the other: the first makes the KEK, the CA and the demo personas.
      a = await startInstance(env);
      b = await startInstance(env);
    }, 90_000);

    afterAll(async () => {
      await stopInstance(a);
      await stopInstance(b);
      for (const agent of agents) await agent.close();
      await database?.drop();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      if (redisUrl) {
        const redis = new Redis(redisUrl);
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      }
    });

    it('enforce one limit per partner between them, and each other’s IP blocks', async () => {
      const bankA = await partner('bank-a');
      const bankB = await partner('bank-b');

      // Alternating between the instances: ten admitted in all, not ten on each.
      const seen: number[] = [];
      for (let i = 0; i < LIMIT + 4; i++) seen.push((await bankA(i % 2 ? b : a)).status);
      expect(seen).toEqual([...Array(LIMIT).fill(200), 429, 429, 429, 429]);
      // Bank B's allowance is its own, on either instance.
      expect((await bankB(a)).status).toBe(200);
      expect((await bankB(b)).status).toBe(200);

      // Two more refusals (six in all, three on each instance) block the source IP: B
      // makes the block, A honours it within its one-second cache.
      expect((await bankA(a)).status).toBe(429);
      expect(await bankA(b)).toEqual({ status: 403, code: 'IP_BLOCKED' });
      await expect
        .poll(async () => (await bankB(a)).code, { timeout: 5_000, interval: 200 })
        .toBe('IP_BLOCKED');

      // The analyst lifts it on A; B lets bank B through again within its cache time.
      const analyst = await analystOn(a);
      const page = await analyst.request('/security-center/blocks');
      expect(page.body).toContain('data-testid="ip-block-127-0-0-1"');
      const blockId = /action="\/security-center\/blocks\/([^/]+)\/lift"/.exec(page.body)![1]!;
      const lifted = await analyst.request(`/security-center/blocks/${blockId}/lift`, {
        form: { _csrf: HttpClient.csrf(page.body) },
      });
      expect(lifted.body).toContain('Блокировка адреса 127.0.0.1 снята.');
      expect((await bankB(a)).status).toBe(200);
      await expect
        .poll(async () => (await bankB(b)).status, { timeout: 5_000, interval: 200 })
        .toBe(200);
      // Bank A is still over its limit in this window, whichever instance it asks.
      expect((await bankA(a)).status).toBe(429);
      expect((await bankA(b)).status).toBe(429);
    });
  },
);
