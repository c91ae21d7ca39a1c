import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBankApp } from '../../src/bank/app.js';
import type { BankDB } from '../../src/bank/db.js';
import { bankMigrations } from '../../src/bank/migrations.js';
import { loadConfig } from '../../src/config/config.js';
import { rotateKek } from '../../src/platform/keys/kek-rotation.js';
import {
  kekFilePath,
  openServiceRuntime,
  type ServiceRuntime,
} from '../../src/platform/runtime/service-runtime.js';
import { buildPortalApp } from '../../src/portal/app.js';
import type { PortalDB } from '../../src/portal/db.js';
import { portalMigrations } from '../../src/portal/migrations.js';
import { freshPostgresUrl, testEngines } from '../support/databases.js';
import { demoPorts, runCli } from '../support/demo-process.js';

/*
 * `soglasie keys rotate` as a person runs it: on data the demo seeded (the portal's and
 * the bank's sealed personal data), with the services stopped on the embedded database,
 * or on PostgreSQL. Not a terminal here, so progress comes as plain lines. Afterwards the
 * services, started afresh from the data directory, read everything.
 */
describe.each(testEngines())('soglasie keys rotate [$name]', (engine) => {
  let dataDir: string;
  let env: Record<string, string>;
  const databases: { url: string; drop(): Promise<void> }[] = [];

  async function cli(args: string[]) {
    const run = runCli(args, env);
    const code = await run.exited;
    return { code, output: run.output() };
  }
  const kekVersions = (service: 'portal' | 'bank') =>
    (
      JSON.parse(readFileSync(kekFilePath(dataDir, service), 'utf8')) as {
        keys: { version: number }[];
      }
    ).keys.map((k) => k.version);

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-keys-cli-'));
    env = { SOGLASIE_DATA_DIR: dataDir, ...(await demoPorts()) };
    if (engine.name === 'postgres') {
      databases.push(await freshPostgresUrl(), await freshPostgresUrl());
      env.PORTAL_DATABASE_URL = databases[0]!.url;
      env.BANK_DATABASE_URL = databases[1]!.url;
    }
    const seeded = await cli(['seed']);
    expect(seeded.code, seeded.output).toBe(0);
  }, 90_000);
  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    for (const database of databases) await database.drop();
  });

  it('rotates the bank KEK with progress lines, re-wrapping every customer', async () => {
    const { code, output } = await cli([
      'keys',
      'rotate',
      '--service',
      'bank',
      '--batch-size',
      '2',
    ]);
    expect(code, output).toBe(0);
    expect(output).toContain('Key-encryption key (bank)');
    expect(output).toMatch(/re-wrap pass 1: \d+\/\d+ rows \(100%\), \d+ re-wrapped/);
    expect(output).toContain('version 2 is current');
    expect(output).not.toContain('Token signing key');
    if (engine.name === 'postgres') expect(output).toContain('second pass');
    expect(output).toContain('old versions stay in the KEK file');
    expect(kekVersions('bank')).toEqual([1, 2]);
  }, 90_000);

  it('rotates the portal signing key and KEK, retiring the old KEK', async () => {
    const { code, output } = await cli(['keys', 'rotate', '--immediately', '--retire-old-keks']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/signs from now on/);
    expect(output).toMatch(/is retired: still in the JWKS, and its tokens still valid, until/);
    expect(output).toContain('version 2 is current');
    expect(output).toContain('retired (removed from the KEK file): v1');
    expect(kekVersions('portal')).toEqual([2]);

    const status = await cli(['keys', 'status']);
    expect(status.code, status.output).toBe(0);
    expect(status.output).toMatch(/current\s+\S+\s+signing since/);
    expect(status.output).toMatch(/next\s+\S+/);
    expect(status.output).toMatch(/retired\s+\S+\s+retired/);
    expect(status.output).toMatch(/v2 \(current\).*wraps [1-9]\d* data key/);
    expect(status.output).not.toMatch(/\bv1\b/);
  }, 90_000);

  it('the services read everything afterwards; a bank rotation with reads in between', async () => {
    const config = loadConfig({ ...env, SOGLASIE_MODE: 'demo', LOG_LEVEL: 'silent' });
    const logger = pino({ level: 'silent' });
    const bankRuntime: ServiceRuntime<BankDB> = await openServiceRuntime<BankDB>({
      service: 'bank',
      config,
      migrations: bankMigrations,
      logger,
    });
    try {
      const bank = await buildBankApp(bankRuntime);
      const ids = (await bankRuntime.db.selectFrom('customers').select('id').execute()).map(
        (r) => r.id,
      );
      expect(ids.length).toBeGreaterThanOrEqual(3);
      const readAll = async () => {
        for (const id of ids) expect((await bank.customers.get(id))?.personal).toBeTruthy();
      };
      await readAll();

      // Another rotation while this bank runs on the database (the CLI's work, in process),
      // reading every customer after each batch.
      const result = await rotateKek({
        kekPath: kekFilePath(dataDir, 'bank'),
        db: bankRuntime.db,
        servicesMayRun: true,
        settleMs: 0,
        batchSize: 1,
        retireOld: true,
        afterBatch: readAll,
      });
      expect(result.version).toBe(3);
      expect(result.retired).toEqual([1, 2]);
      await readAll();

      if (engine.name === 'pglite') {
        // The embedded database is this process's now: the command says to stop it.
        const refused = await cli(['keys', 'rotate', '--service', 'bank']);
        expect(refused.code).toBe(1);
        expect(refused.output).toMatch(/needs the bank stopped/);
        expect(kekVersions('bank')).toEqual([3]);
      }
      await bank.close();
    } finally {
      await bankRuntime.close();
    }

    const portalRuntime = await openServiceRuntime<PortalDB>({
      service: 'portal',
      config,
      migrations: portalMigrations,
      logger,
    });
    try {
      const portal = await buildPortalApp(portalRuntime);
      const ivanov = await portal.citizens.findIdByIdentifier('+79990000001');
      expect(ivanov).toBeTruthy();
      expect((await portal.citizens.personalData(ivanov!))?.personal).toBeTruthy();
      // The promoted key signs: the JWKS has it first, and the retired one after the next.
      const jwks = (await portal.inject('/jwks')).json() as { keys: { kid: string }[] };
      expect(jwks.keys).toHaveLength(3);
      expect(jwks.keys[0]!.kid).toBe(portal.signingKid());
      await portal.close();
    } finally {
      await portalRuntime.close();
    }
  }, 120_000);
});
