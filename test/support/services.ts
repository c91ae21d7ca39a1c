import pino from 'pino';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/config.js';
import { buildBankApp } from '../../src/bank/app.js';
import type { BankDB } from '../../src/bank/db.js';
import { bankMigrations } from '../../src/bank/migrations.js';
import { seedBankPersonas } from '../../src/bank/personas.js';
import { manualClock } from '../../src/platform/clock.js';
import { memoryKeyring } from '../../src/platform/crypto/index.js';
import { openServiceRuntime } from '../../src/platform/runtime/service-runtime.js';
import { buildPortalApp } from '../../src/portal/app.js';
import type { PortalDB } from '../../src/portal/db.js';
import { portalMigrations } from '../../src/portal/migrations.js';
import { seedPortalPersonas } from '../../src/portal/personas.js';
import { freshDatabase, type TestEngine } from './databases.js';

/** Log lines a test can search, e.g. to prove no secret was logged. */
export function captureLogs() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

async function testSetup(engine: TestEngine) {
  const clock = manualClock('2026-12-01T09:00:00Z');
  const config = loadConfig({ SOGLASIE_MODE: 'test', SOGLASIE_DATA_DIR: '/nonexistent' });
  const logs = captureLogs();
  const database = await freshDatabase(engine);
  return {
    clock,
    logs,
    database,
    common: { config, logger: logs.logger, clock, keyring: memoryKeyring() },
  };
}

/** The portal app on a fresh database with the demo personas, frozen time, test mode. */
export async function testPortal(engine: TestEngine) {
  const { clock, logs, database, common } = await testSetup(engine);
  const runtime = await openServiceRuntime<PortalDB>({
    ...common,
    service: 'portal',
    migrations: portalMigrations,
    database: database as never,
  });
  const app = await buildPortalApp(runtime);
  await seedPortalPersonas(app.citizens, app.records);
  const close = async () => {
    await app.close();
    await runtime.close();
  };
  return { app, runtime, clock, logs, close };
}

/** The bank app on a fresh database with the demo personas, frozen time, test mode. */
export async function testBank(engine: TestEngine) {
  const { clock, logs, database, common } = await testSetup(engine);
  const runtime = await openServiceRuntime<BankDB>({
    ...common,
    service: 'bank',
    migrations: bankMigrations,
    database: database as never,
  });
  const app = await buildBankApp(runtime);
  await seedBankPersonas(app.customers);
  const close = async () => {
    await app.close();
    await runtime.close();
  };
  return { app, runtime, clock, logs, close };
}

/**
 * A browser stand-in for inject(): keeps cookies, reads the CSRF token from the last
 * page, and posts forms the way a browser would.
 */
export class Browser {
  cookies = new Map<string, string>();
  lastPage = '';
  /** The client address the app sees (request.ip), e.g. to test per-IP rules. */
  remoteAddress: string | undefined;

  constructor(private readonly app: FastifyInstance) {}

  #remember(res: LightMyRequestResponse) {
    for (const c of res.cookies) {
      if (c.expires && new Date(c.expires).getTime() < Date.now() + 1000 && !c.value)
        this.cookies.delete(c.name);
      else if (c.value === '') this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
  }

  get cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async get(url: string) {
    const res = await this.app.inject({
      method: 'GET',
      url,
      headers: { accept: 'text/html', cookie: this.cookieHeader },
      ...(this.remoteAddress ? { remoteAddress: this.remoteAddress } : {}),
    });
    this.#remember(res);
    if (res.headers['content-type']?.toString().startsWith('text/html')) this.lastPage = res.body;
    return res;
  }

  csrf(): string {
    const match = /name="_csrf" value="([^"]+)"/.exec(this.lastPage);
    if (!match) throw new Error('no CSRF token on the last page');
    return match[1]!;
  }

  async post(url: string, fields: Record<string, string>, opts: { csrf?: boolean } = {}) {
    const body = new URLSearchParams({
      ...(opts.csrf === false ? {} : { _csrf: this.csrf() }),
      ...fields,
    }).toString();
    const res = await this.app.inject({
      method: 'POST',
      url,
      payload: body,
      headers: {
        accept: 'text/html',
        'content-type': 'application/x-www-form-urlencoded',
        cookie: this.cookieHeader,
      },
      ...(this.remoteAddress ? { remoteAddress: this.remoteAddress } : {}),
    });
    this.#remember(res);
    if (res.headers['content-type']?.toString().startsWith('text/html')) this.lastPage = res.body;
    return res;
  }

  /** Follows one redirect, as a browser would after a form post. */
  async follow(res: LightMyRequestResponse) {
    const location = res.headers.location;
    if (!location) throw new Error(`expected a redirect, got ${res.statusCode}`);
    return this.get(String(location));
  }
}

/** The newest one-time code sent to `to`, from the dev outbox over HTTP. */
export async function codeFromOutbox(app: FastifyInstance, to: string): Promise<string> {
  const res = await app.inject({ method: 'GET', url: `/dev/outbox?to=${encodeURIComponent(to)}` });
  const messages = res.json() as { code?: string }[];
  const code = messages.find((m) => m.code)?.code;
  if (!code) throw new Error(`no code in the outbox for ${to}`);
  return code;
}
