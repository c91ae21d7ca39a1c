import { mkdtempSync, readFileSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresUrl } from '../support/databases.js';
import { HttpClient, runCli, startDemo, type DemoProcess } from '../support/demo-process.js';

const PASSWORD = 'Demo-Passw0rd!';

/** Logs in over real HTTP with the code from the dev outbox; returns the profile page. */
async function logIn(base: string, username: string, phone: string) {
  const client = new HttpClient(base);
  const login = await client.request('/login');
  const afterPassword = await client.request('/login', {
    form: { _csrf: HttpClient.csrf(login.body), username, password: PASSWORD },
  });
  expect(afterPassword.location).toBe('/login/code');
  const codePage = await client.request('/login/code');
  const outbox = (await (
    await fetch(`${base}/dev/outbox?to=${encodeURIComponent(phone)}`)
  ).json()) as { code: string }[];
  const done = await client.request('/login/code', {
    form: { _csrf: HttpClient.csrf(codePage.body), code: outbox[0]!.code },
  });
  expect(done.status).toBe(303);
  let location = done.location!;
  let page = await client.request(location);
  while (page.status === 303) {
    location = page.location!;
    page = await client.request(location);
  }
  return { page, code: outbox[0]!.code };
}

describe('the demo as `npm start` runs it (embedded databases)', () => {
  let dataDir: string;
  let demo: DemoProcess;
  let startMs: number;

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-demo-'));
    const t0 = Date.now();
    demo = await startDemo({ SOGLASIE_DATA_DIR: dataDir, LOG_LEVEL: 'debug' });
    startMs = Date.now() - t0;
  }, 90_000);

  afterAll(async () => {
    if (demo?.child.exitCode === null) await demo.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('comes up with both /healthz answering 200 within 30 s and prints the logins', async () => {
    expect(startMs).toBeLessThan(30_000);
    for (const base of [demo.portalUrl, demo.bankUrl]) {
      const res = await fetch(`${base}/healthz`);
      expect(res.status).toBe(200);
    }
    expect(demo.output()).toContain('+79990000001');
    expect(demo.output()).toContain('Demo-Passw0rd!');
    expect(demo.output()).toContain('DEMO MODE');
  });

  it('lets the demo personas log into the portal and the bank over HTTP', async () => {
    const portal = await logIn(demo.portalUrl, '+79990000001', '+79990000001');
    expect(portal.page.body).toContain('Иванов Иван Иванович');
    const bank = await logIn(demo.bankUrl, 'ivanov', '+79990000001');
    expect(bank.page.body).toContain('Личные данные');
  });

  it('writes no password, code, SNILS or passport number to its logs', async () => {
    const portal = await logIn(demo.portalUrl, 'ivanov@example.test', '+79990000001');
    const snils = /data-testid="personal-snils">([^<]+)</.exec(portal.page.body)![1]!;
    const passport = /Серия и номер<\/dt><dd>([^<]+)</.exec(portal.page.body)?.[1];
    const logs = demo.output();
    expect(logs).toContain('"msg":"login event"'); // debug logging really is on
    for (const secret of [
      portal.code,
      snils,
      snils.replace(/\D/g, ''),
      ...(passport ? [passport.replace(/\s+/g, ' ').split(' ').pop()!] : []),
    ]) {
      expect(logs).not.toContain(secret);
    }
    // The password appears once, in the printed banner for the person at the terminal, never in a log line.
    const logLines = logs.split('\n').filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(5);
    expect(logLines.join('\n')).not.toContain(PASSWORD);
  });

  it('`soglasie partner add` registers a partner while the demo runs', async () => {
    const out = path.join(dataDir, 'new-partner');
    const run = runCli(
      [
        'partner',
        'add',
        '--name',
        'Тестовый банк',
        '--redirect-uri',
        'http://localhost:4999/cb',
        '--out',
        out,
      ],
      { SOGLASIE_DATA_DIR: dataDir, PORTAL_HTTP_PORT: new URL(demo.portalUrl).port },
    );
    expect(await run.exited).toBe(0);
    const info = JSON.parse(readFileSync(path.join(out, 'client.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(info.client_id).toMatch(/^partner-/);
    expect(info.issuer).toBe(demo.portalUrl);
    for (const secret of ['signing-key.jwk.json', 'client-key.pem']) {
      expect(statSync(path.join(out, secret)).mode & 0o777).toBe(0o600);
    }
    const jwk = JSON.parse(readFileSync(path.join(out, 'signing-key.jwk.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(jwk.kid).toBeTruthy();
    expect(jwk.d).toBeTruthy();
    // The new certificate opens the partner listener and names the new partner.
    const agent = new Agent({
      connect: {
        ca: readFileSync(path.join(out, 'ca.pem'), 'utf8'),
        cert: readFileSync(path.join(out, 'client-cert.pem'), 'utf8'),
        key: readFileSync(path.join(out, 'client-key.pem'), 'utf8'),
      },
    });
    const mtls = (info.mtls_endpoints as Record<string, string>).status!;
    const status = await undiciFetch(mtls, { dispatcher: agent });
    expect(await status.json()).toMatchObject({
      partner: { client_id: info.client_id, name: 'Тестовый банк' },
    });
    await agent.close();

    const refused = runCli(
      ['partner', 'add', '--name', 'X', '--redirect-uri', 'ftp://nope', '--out', out + '2'],
      {
        SOGLASIE_DATA_DIR: dataDir,
        PORTAL_HTTP_PORT: new URL(demo.portalUrl).port,
      },
    );
    expect(await refused.exited).toBe(1);
    expect(refused.output()).toContain('redirect URIs must use https');

    // J1 registration from the command line: a file the portal checks, errors in one line.
    const cli = (file: string, to: string) =>
      runCli(
        [
          'partner',
          'add',
          '--name',
          'Банк J1',
          '--redirect-uri',
          'https://j1.example/cb',
          '--out',
          to,
          '--portal-connect',
          file,
        ],
        { SOGLASIE_DATA_DIR: dataDir, PORTAL_HTTP_PORT: new URL(demo.portalUrl).port },
      );
    const missing = cli(path.join(dataDir, 'no-such.json'), out + '3');
    expect(await missing.exited).toBe(1);
    expect(missing.output()).toContain('cannot read --portal-connect');
    const badFile = path.join(dataDir, 'connect-bad.json');
    writeFileSync(
      badFile,
      JSON.stringify({
        client_ref_label: 'Номер клиента',
        request: { sysname: 'CREDIT', purposes: ['Кредит'], scopes: ['fullname', 'salary'] },
      }),
    );
    const bad = cli(badFile, out + '4');
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toContain('portal_connect.request');
    const goodFile = path.join(dataDir, 'connect-good.json');
    writeFileSync(
      goodFile,
      JSON.stringify({
        client_ref_label: 'Номер клиента',
        request: { sysname: 'CREDIT', purposes: ['Кредит'], scopes: ['fullname', 'snils'] },
      }),
    );
    const good = cli(goodFile, out + '5');
    expect(await good.exited).toBe(0);
    expect(JSON.parse(readFileSync(path.join(out + '5', 'client.json'), 'utf8'))).toMatchObject({
      portal_connect: true,
    });
    for (const run of [missing, bad]) expect(run.output()).not.toMatch(/\n\s+at /);
  });

  it('refuses a second process on the same data directory with a clear message', async () => {
    const second = runCli(['migrate'], { SOGLASIE_DATA_DIR: dataDir });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain('in use by another process');
    expect(second.output()).not.toMatch(/\n\s+at /);
  });

  it('stops cleanly on Ctrl-C and starts again without seeding twice', async () => {
    expect(await demo.stop()).toBe(0);
    expect(demo.output()).toContain('Stopped.');
    demo = await startDemo({ SOGLASIE_DATA_DIR: dataDir });
    const portal = await logIn(demo.portalUrl, '+79990000001', '+79990000001');
    expect(portal.page.body).toContain('Иванов Иван Иванович');
    // New ports this time: the bank is registered again for its new address.
    const registration = JSON.parse(
      readFileSync(path.join(dataDir, 'bank-partner', 'client.json'), 'utf8'),
    ) as { redirect_uris: string[]; issuer: string };
    expect(registration.redirect_uris).toEqual([`${demo.bankUrl}/portal/callback`]);
    expect(registration.issuer).toBe(demo.portalUrl);
    expect(await demo.stop()).toBe(0);
  }, 90_000);
});

describe('commands fail with a clear message and a non-zero exit', () => {
  it('reports every configuration problem at once', async () => {
    const run = runCli(['portal'], { PORTAL_HTTP_PORT: 'abc', LOG_LEVEL: 'loud' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('PORTAL_HTTP_PORT must be a port number');
    expect(run.output()).toContain('LOG_LEVEL must be one of');
  });

  it('refuses demo mode under NODE_ENV=production', async () => {
    const run = runCli(['demo'], { NODE_ENV: 'production' });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('refused when NODE_ENV=production');
  });

  it('says when the database is unreachable, without the password', async () => {
    const run = runCli(['migrate', '--service', 'portal'], {
      PORTAL_DATABASE_URL: 'postgres://app:s3cret-pw@127.0.0.1:1/portal',
      SOGLASIE_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'soglasie-nodb-')),
    });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/Cannot reach the portal database/);
    expect(run.output()).not.toContain('s3cret-pw');
  });

  it('`soglasie pki init` creates the partner CA once and never overwrites it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-pki-'));
    try {
      const first = runCli(['pki', 'init'], { SOGLASIE_DATA_DIR: dir });
      expect(await first.exited).toBe(0);
      expect(first.output()).toContain('ca.pem');
      const ca = readFileSync(path.join(dir, 'portal-pki', 'ca.pem'), 'utf8');
      expect(statSync(path.join(dir, 'portal-pki', 'ca-key.pem')).mode & 0o777).toBe(0o600);
      const again = runCli(['pki', 'init'], { SOGLASIE_DATA_DIR: dir });
      expect(await again.exited).toBe(0);
      expect(again.output()).toContain('nothing changed');
      expect(readFileSync(path.join(dir, 'portal-pki', 'ca.pem'), 'utf8')).toBe(ca);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says when the data directory is unusable', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-bad-'));
    const file = path.join(dir, 'not-a-dir');
    (await import('node:fs')).writeFileSync(file, 'x');
    const run = runCli(['migrate'], { SOGLASIE_DATA_DIR: file });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('soglasie:');
    expect(run.output()).not.toMatch(/\n\s+at /);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe.runIf(process.env.TEST_DATABASE_URL)('the demo on PostgreSQL servers', () => {
  it('starts, serves a login and stops with PORTAL_DATABASE_URL and BANK_DATABASE_URL', async () => {
    const portalDb = await freshPostgresUrl();
    const bankDb = await freshPostgresUrl();
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-pg-'));
    try {
      const demo = await startDemo({
        SOGLASIE_DATA_DIR: dataDir,
        PORTAL_DATABASE_URL: portalDb.url,
        BANK_DATABASE_URL: bankDb.url,
      });
      try {
        expect((await fetch(`${demo.portalUrl}/healthz`)).status).toBe(200);
        const bank = await logIn(demo.bankUrl, 'petrova', '+79990000002');
        expect(bank.page.body).toContain('Петрова');
      } finally {
        expect(await demo.stop()).toBe(0);
      }
    } finally {
      await portalDb.drop();
      await bankDb.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
