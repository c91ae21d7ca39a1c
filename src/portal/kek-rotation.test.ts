import * as client from 'openid-client';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachEngine } from '../../test/support/databases.js';
import {
  addPartner,
  obtainTokens,
  startLivePortal,
  type LivePortal,
} from '../../test/support/live-portal.js';
import { openLiveFileKeyring, type LiveKeyring } from '../platform/crypto/index.js';
import { openDatabase, type Database } from '../platform/db/index.js';
import { countKekUses, rotateKek } from '../platform/keys/kek-rotation.js';
import { kekFilePath, openServiceRuntime } from '../platform/runtime/service-runtime.js';
import { buildPortalApp } from './app.js';
import type { PortalDB } from './db.js';
import { portalMigrations } from './migrations.js';

/*
 * `keys rotate --kek` while the portal runs (as on PostgreSQL): every data key in the
 * portal's database is re-wrapped under the new KEK version in small batches, and after
 * every batch the running portal serves the data API, reads a citizen's sealed data and
 * seals new data. Its keyring was opened before the rotation: it learns the new version
 * from the data itself. Afterwards the old version is retired and a restarted portal
 * (a keyring read afresh from the file) reads everything.
 */
describeEachEngine('KEK rotation under a running portal', (engine) => {
  let portal: LivePortal;
  let rp: Awaited<ReturnType<typeof addPartner>>;
  let cli: Database<PortalDB> | undefined;

  beforeAll(async () => {
    portal = await startLivePortal(engine);
    rp = await addPartner(portal);
    if (engine.name === 'postgres') {
      cli = await openDatabase<PortalDB>({ name: 'cli', url: portal.database.url! });
    }
  }, 60_000);
  afterAll(async () => {
    await rp?.close();
    await cli?.close();
    await portal?.close();
  });

  it('no read fails during or after; the old KEK is retired when nothing uses it', async () => {
    const tokens = await obtainTokens(portal, rp);
    const sub = tokens.claims()!.sub;
    const ivanov = (await portal.app.citizens.findIdByIdentifier('+79990000001'))!;
    const read = async () => {
      const person = await client.fetchProtectedResource(
        rp.config,
        tokens.access_token,
        new URL(`${portal.mtlsUrl}/rs/prns/${sub}`),
        'GET',
      );
      expect(person.status).toBe(200);
      expect(((await person.json()) as { lastName?: string }).lastName).toBe('Иванов');
      const orders = await client.fetchProtectedResource(
        rp.config,
        tokens.access_token,
        new URL(`${portal.mtlsUrl}/rs/prns/${sub}/orders`),
        'GET',
      );
      expect(orders.status).toBe(200);
      expect((await portal.app.citizens.personalData(ivanov))?.personal).toBeTruthy();
    };
    let subscriptions = 0;
    const write = async () => {
      // A partner registers a webhook endpoint: its secret is sealed under the KEK.
      const res = await rp.post(`${portal.mtlsUrl}/partner/webhooks`, {
        url: `http://127.0.0.1:9/hook-${subscriptions++}`,
      });
      expect(res.status).toBe(201);
    };
    await read();
    await write();

    const keyring = portal.runtime.keyring as LiveKeyring;
    expect(keyring.currentVersion).toBe(1);
    const db = cli?.db ?? portal.runtime.db;
    const before = await countKekUses(db);
    expect([...before.byVersion.keys()]).toEqual([1]);

    let batches = 0;
    const result = await rotateKek({
      kekPath: kekFilePath(portal.dataDir, 'portal'),
      db,
      servicesMayRun: true,
      settleMs: 0,
      batchSize: 3,
      retireOld: true,
      afterBatch: async () => {
        batches++;
        await read();
        await write();
      },
    });
    expect(batches).toBeGreaterThan(5);
    expect(result.passes.flatMap((p) => p.failures)).toEqual([]);
    expect(result.retired).toEqual([1]);
    expect([...result.inUse.keys()]).toEqual([2]);
    // The running portal learned v2 from the data and seals new data with it.
    expect(keyring.currentVersion).toBe(2);
    await read();
    await write();
    expect([...(await countKekUses(db)).byVersion.keys()]).toEqual([2]);

    // A restart: a portal on the same database with the KEK file as it is now (v2 only).
    const restartedKeyring = await openLiveFileKeyring(kekFilePath(portal.dataDir, 'portal'));
    expect(restartedKeyring.versions).toEqual([2]);
    const restarted = await openServiceRuntime<PortalDB>({
      service: 'portal',
      config: portal.config,
      migrations: portalMigrations,
      logger: pino({ level: 'silent' }),
      keyring: restartedKeyring,
      database: { ...portal.database, close: async () => {} } as never,
    });
    const app = await buildPortalApp(restarted);
    try {
      const found = await app.citizens.findIdByIdentifier('+79990000001');
      expect(found).toBe(ivanov);
      expect((await app.citizens.personalData(ivanov))?.personal).toBeTruthy();
      expect((await app.records.records(ivanov)).orders.length).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  }, 120_000);
});
