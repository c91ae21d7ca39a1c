import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import {
  addKeyVersion,
  createSealer,
  memoryKeyring,
  openFileKeyring,
  openLiveFileKeyring,
  parseSealed,
  recordAad,
  serializeSealed,
  unwrapSubjectKey,
  wrapSubjectKey,
  type KeyEncryptionKeyring,
  type WrappedKey,
} from '../crypto/index.js';
import { inTransaction, openDatabase } from '../db/index.js';
import { createServiceKeyTables, loadOrCreateServiceKey } from '../runtime/service-keys.js';
import { countKekUses, rewrapAll, rewrapValue, rotateKek } from './kek-rotation.js';
import { createSealedValueStore } from './sealed-values.store.js';

/*
 * KEK rotation over a database holding sealed values in every shape the services use:
 * a sealed record in a text column, one in a jsonb column, one nested as JSON text in a
 * jsonb document (a session's data), a bare wrapped subject key, and the platform's
 * service_keys row. Every value opens before, during (after each batch) and after.
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test tables
type Db = Kysely<any>;

const ROWS = 30;
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const v1Only = () => memoryKeyring([{ version: 1, key: k1 }]);
const both = () =>
  memoryKeyring([
    { version: 1, key: k1 },
    { version: 2, key: k2 },
  ]);
const v2Only = () => memoryKeyring([{ version: 2, key: k2 }]);

async function createTables(db: Db) {
  await sql`create table things (
    id text primary key,
    secret text not null,
    doc jsonb not null,
    session jsonb not null,
    subject_key text,
    note text
  )`.execute(db);
  await createServiceKeyTables(db as Kysely<never>);
}

async function seed(db: Db, keyring: KeyEncryptionKeyring) {
  const sealer = createSealer(keyring);
  for (let i = 0; i < ROWS; i++) {
    const id = `t${String(i).padStart(3, '0')}`;
    const secret = serializeSealed(await sealer.seal(`secret ${i}`, recordAad('things', id)));
    const doc = await sealer.seal({ n: i }, recordAad('things', id, 'doc'));
    const nested = serializeSealed(await sealer.seal(`totp ${i}`, recordAad('sessions', id)));
    const subjectKey = JSON.stringify(await wrapSubjectKey(keyring, randomBytes(32)));
    await sql`insert into things values (${id}, ${secret}, ${JSON.stringify(doc)}::jsonb,
      ${JSON.stringify({ user: id, totpEnrolment: nested })}::jsonb,
      ${i % 3 === 0 ? null : subjectKey}, ${'a note that mentions kek but holds none'})`.execute(
      db,
    );
  }
  await loadOrCreateServiceKey(db as never, keyring, 'lookup-hash', new Date());
}

/** Opens every sealed value with `keyring`; throws on the first that does not open. */
async function openAll(db: Db, keyring: KeyEncryptionKeyring) {
  const sealer = createSealer(keyring);
  const { rows } = await sql<{
    id: string;
    secret: string;
    doc: unknown;
    session: { totpEnrolment: string };
    subject_key: string | null;
  }>`select * from things order by id`.execute(db);
  for (const row of rows) {
    expect(await sealer.openText(parseSealed(row.secret), recordAad('things', row.id))).toMatch(
      /^secret /,
    );
    await sealer.openJson(row.doc as never, recordAad('things', row.id, 'doc'));
    expect(
      await sealer.openText(parseSealed(row.session.totpEnrolment), recordAad('sessions', row.id)),
    ).toMatch(/^totp /);
    if (row.subject_key) {
      await unwrapSubjectKey(keyring, JSON.parse(row.subject_key) as WrappedKey);
    }
  }
  await loadOrCreateServiceKey(db as never, keyring, 'lookup-hash', new Date());
  return rows.length;
}

describeEachEngine('KEK rotation: re-wrap every data key', (engine) => {
  let database: FreshDatabase<unknown>;
  let db: Db;

  beforeEach(async () => {
    database = await freshDatabase(engine);
    db = database.db as Db;
    await createTables(db);
    await seed(db, v1Only());
  });
  afterEach(async () => {
    await database.close();
  });

  it('re-wraps every shape in batches; every value opens during and after', async () => {
    const before = await countKekUses(db);
    // 30 secrets + 30 docs + 30 nested + 20 subject keys + 1 service key.
    expect(Object.fromEntries(before.byVersion)).toEqual({ 1: 111 });
    expect(before.uses.map((u) => `${u.table}.${u.column}`)).toEqual([
      'service_keys.wrapped',
      'things.doc',
      'things.secret',
      'things.session',
      'things.subject_key',
    ]);

    const progress: number[] = [];
    let batches = 0;
    const report = await rewrapAll({
      db,
      keyring: both(),
      batchSize: 7,
      windowPages: 1,
      onProgress: (p) => {
        progress.push(p.done);
        expect(p.total).toBe(ROWS + 1);
      },
      // A reader holding both versions opens everything between any two batches.
      afterBatch: async () => {
        batches++;
        expect(await openAll(db, both())).toBe(ROWS);
      },
    });
    expect(report).toMatchObject({ rewrapped: 111, conflicts: 0 });
    expect(report.failures).toEqual([]);
    expect(batches).toBeGreaterThan(3);
    expect(progress.at(-1)).toBe(ROWS + 1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    expect(Object.fromEntries((await countKekUses(db)).byVersion)).toEqual({ 2: 111 });
    // Only the wrapped keys changed: the old version is no longer needed at all.
    expect(await openAll(db, v2Only())).toBe(ROWS);
    const { rows } = await sql<{ note: string }>`select distinct note from things`.execute(db);
    expect(rows).toEqual([{ note: 'a note that mentions kek but holds none' }]);

    // A second pass has nothing left to do.
    expect(await rewrapAll({ db, keyring: both() })).toMatchObject({ rewrapped: 0 });
  });

  it('keeps the ciphertext: only kek and dk of a sealed value change', async () => {
    const { rows } = await sql<{ secret: string }>`select secret from things limit 1`.execute(db);
    const old = JSON.parse(rows[0]!.secret) as Record<string, unknown>;
    const next = JSON.parse((await rewrapValue(rows[0]!.secret, both()))!) as Record<
      string,
      unknown
    >;
    expect(Object.keys(next)).toEqual(Object.keys(old));
    expect(next).toMatchObject({ v: 1, kek: 2, iv: old.iv, ct: old.ct, tag: old.tag });
    expect(next.dk).not.toBe(old.dk);
    expect(await rewrapValue(JSON.stringify(next), both())).toBeUndefined();
    expect(await rewrapValue('not json, though it says kek', both())).toBeUndefined();
  });

  it('reports a value it cannot unwrap and leaves it as it is', async () => {
    const { rows } = await sql<{ id: string; secret: string }>`
      select id, secret from things order by id limit 1`.execute(db);
    const broken = { ...JSON.parse(rows[0]!.secret), dk: randomBytes(40).toString('base64') };
    await sql`update things set secret = ${JSON.stringify(broken)} where id = ${rows[0]!.id}`.execute(
      db,
    );
    const report = await rewrapAll({ db, keyring: both() });
    expect(report.failures).toEqual([
      expect.objectContaining({ table: 'things', column: 'secret', reason: 'ERR_DECRYPT_FAILED' }),
    ]);
    expect(report.rewrapped).toBe(110);
    expect(Object.fromEntries((await countKekUses(db)).byVersion)).toEqual({ 1: 1, 2: 110 });
  });

  it('leaves a row changed since it was read (compare-and-set), for the next pass', async () => {
    const store = createSealedValueStore(db);
    const [column] = (await store.candidateColumns()).filter(
      (c) => c.table === 'things' && c.column === 'secret',
    );
    const [row] = await store.window('things', ['secret'], 0, 1000);
    const change = {
      at: column!,
      oldText: row!.values.secret!,
      newText: (await rewrapValue(row!.values.secret!, both()))!,
    };
    await sql`update things set note = 'touched', secret = secret || '' where ctid = ${row!.ctid}::tid`.execute(
      db,
    );
    // The row moved (an update writes a new version): the old address no longer matches.
    expect(
      await inTransaction(db, (trx) => store.replace(trx, 'things', row!.ctid, [change])),
    ).toBe(false);
    // The same value at the row's new address does go through.
    const [moved] = await store
      .window('things', ['secret'], 0, 1000)
      .then((rows) => rows.filter((r) => r.values.secret === change.oldText));
    expect(
      await inTransaction(db, (trx) => store.replace(trx, 'things', moved!.ctid, [change])),
    ).toBe(true);
  });

  // Two connections to one server: PostgreSQL only (an embedded database has one).
  if (engine.name === 'postgres')
    it('a service writing meanwhile on another connection loses nothing', async () => {
      const other = await openDatabase({ name: 'service', url: database.url! });
      try {
        const writer = createSealer(v1Only());
        let writes = 0;
        const report = await rewrapAll({
          db,
          keyring: both(),
          batchSize: 5,
          afterBatch: async () => {
            // The running service (still on v1) updates rows as the rotation goes.
            const id = `t${String(writes++ % ROWS).padStart(3, '0')}`;
            const secret = serializeSealed(
              await writer.seal(`secret new`, recordAad('things', id)),
            );
            await sql`update things set secret = ${secret} where id = ${id}`.execute(other.db);
          },
        });
        expect(report.failures).toEqual([]);
        // A second pass (as keys rotate makes when services may run) takes the rest.
        await rewrapAll({ db, keyring: both() });
        expect(Object.fromEntries((await countKekUses(db)).byVersion)).toEqual({ 2: 111 });
        expect(await openAll(db, v2Only())).toBe(ROWS);
      } finally {
        await other.close();
      }
    });
});

describeEachEngine('KEK rotation with the KEK file', (engine) => {
  let dir: string;
  let kekPath: string;
  let database: FreshDatabase<unknown>;
  let db: Db;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soglasie-kek-rotation-'));
    kekPath = join(dir, 'portal-kek.json');
    database = await freshDatabase(engine);
    db = database.db as Db;
    await createTables(db);
  });
  afterEach(async () => {
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a running service learns the new version by itself: reads never fail, writes move to it', async () => {
    // The service, started before the rotation: its live keyring holds v1 only.
    const service = await openLiveFileKeyring(kekPath, { recheckMs: 0 });
    await seed(db, service);
    const serviceSealer = createSealer(service);

    const result = await rotateKek({
      kekPath,
      db,
      servicesMayRun: true,
      settleMs: 0,
      batchSize: 10,
      retireOld: true,
      afterBatch: async () => {
        expect(await openAll(db, service)).toBe(ROWS);
      },
    });
    expect(result.version).toBe(2);
    expect(result.passes).toHaveLength(2);
    expect(result.retired).toEqual([1]);
    expect(Object.fromEntries(result.inUse)).toEqual({ 2: 111 });

    // The file now holds v2 only; the service read v2 values and switched to v2.
    const file = JSON.parse(await readFile(kekPath, 'utf8')) as { keys: { version: number }[] };
    expect(file.keys.map((k) => k.version)).toEqual([2]);
    expect(service.currentVersion).toBe(2);
    expect((await serviceSealer.seal('fresh', 'x/1')).kek).toBe(2);
    // A restart (a fresh keyring from the file) opens everything.
    expect(await openAll(db, await openFileKeyring(kekPath))).toBe(ROWS);
  });

  it('keeps an old version that something still uses', async () => {
    const keyring = await openFileKeyring(kekPath);
    await seed(db, keyring);
    const { rows } = await sql<{ id: string; secret: string }>`
      select id, secret from things order by id limit 1`.execute(db);
    const broken = { ...JSON.parse(rows[0]!.secret), dk: randomBytes(40).toString('base64') };
    await sql`update things set secret = ${JSON.stringify(broken)} where id = ${rows[0]!.id}`.execute(
      db,
    );
    const result = await rotateKek({ kekPath, db, servicesMayRun: false, retireOld: true });
    expect(result.passes).toHaveLength(1);
    expect(result.retired).toEqual([]);
    expect(result.kept).toEqual([1]);
    const file = JSON.parse(await readFile(kekPath, 'utf8')) as { keys: { version: number }[] };
    expect(file.keys.map((k) => k.version)).toEqual([1, 2]);
  });
});

describe('openLiveFileKeyring', () => {
  it('re-reads the file for an unknown version, at most once a second', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soglasie-live-kek-'));
    try {
      const path = join(dir, 'kek.json');
      const live = await openLiveFileKeyring(path, { recheckMs: 60_000 });
      const bogus = randomBytes(40);
      await expect(live.unwrap(7, bogus)).rejects.toMatchObject({
        code: 'ERR_KEK_UNKNOWN_VERSION',
      });
      expect(live.versions).toEqual([1]);
      // recheckMs is long: new wraps stay on v1 until the file is re-read.
      await addKeyVersion(path);
      expect((await live.wrap(randomBytes(32))).version).toBe(1);
      await live.reload();
      expect((await live.wrap(randomBytes(32))).version).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
