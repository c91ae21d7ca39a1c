import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { PGliteDialect } from './pglite-dialect.js';

interface ItemsDB {
  items: { id: number; name: string };
}

// The driver contract, checked on both engines so PGlite behaves like node-postgres.
describeEachEngine('Kysely driver behaviour', (engine) => {
  let database: FreshDatabase<ItemsDB>;
  let db: Kysely<ItemsDB>;
  beforeEach(async () => {
    database = await freshDatabase<ItemsDB>(engine);
    db = database.db;
    await sql`create table items (id integer primary key, name text not null)`.execute(db);
  });
  afterEach(async () => {
    await database.close();
  });

  it('reports affected rows for DML, and none for SELECT', async () => {
    const inserted = await db
      .insertInto('items')
      .values([
        { id: 1, name: 'a' },
        { id: 2, name: 'b' },
        { id: 3, name: 'c' },
      ])
      .executeTakeFirstOrThrow();
    expect(inserted.numInsertedOrUpdatedRows).toBe(3n);
    const updated = await db
      .updateTable('items')
      .set({ name: 'x' })
      .where('id', '<', 3)
      .executeTakeFirstOrThrow();
    expect(updated.numUpdatedRows).toBe(2n);
    const deleted = await db.deleteFrom('items').where('id', '=', 3).executeTakeFirstOrThrow();
    expect(deleted.numDeletedRows).toBe(1n);
    const selected = await db.executeQuery(db.selectFrom('items').selectAll().compile());
    expect(selected.numAffectedRows).toBeUndefined();
    expect(selected.rows).toHaveLength(2);
  });

  it('returns rows from RETURNING', async () => {
    const rows = await db
      .insertInto('items')
      .values({ id: 7, name: 'seven' })
      .returningAll()
      .execute();
    expect(rows).toEqual([{ id: 7, name: 'seven' }]);
  });

  it('runs several statements in one parameterless query, like node-postgres', async () => {
    await sql`insert into items values (1, 'a'); insert into items values (2, 'b')`.execute(db);
    expect(await db.selectFrom('items').select('id').orderBy('id').execute()).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
  });

  it('passes PostgreSQL errors through with their SQLSTATE', async () => {
    await db.insertInto('items').values({ id: 1, name: 'a' }).execute();
    const err = await db
      .insertInto('items')
      .values({ id: 1, name: 'again' })
      .execute()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '23505', constraint: 'items_pkey' });
  });

  it('introspects tables', async () => {
    const tables = await db.introspection.getTables();
    expect(tables.map((t) => t.name)).toEqual(['items']);
  });
});

// Streaming is our PGlite driver's own code (node-postgres would need pg-cursor).
describe('PGlite driver streaming', () => {
  it('streams rows in chunks', async () => {
    const database = await freshDatabase<ItemsDB>({ name: 'pglite' });
    try {
      const db = database.db;
      await sql`create table items (id integer primary key, name text not null)`.execute(db);
      await db
        .insertInto('items')
        .values(Array.from({ length: 5 }, (_, i) => ({ id: i, name: `n${i}` })))
        .execute();
      const chunks: number[] = [];
      for await (const row of db.selectFrom('items').select('id').orderBy('id').stream(2))
        chunks.push(row.id);
      expect(chunks).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await database.close();
    }
  });
});

describe('PGlite connection queue', () => {
  let pglite: PGlite;
  beforeEach(async () => {
    pglite = await PGlite.create();
  });
  afterEach(async () => {
    if (!pglite.closed) await pglite.close();
  });

  it('gives up with ERR_DB_BUSY when the connection stays busy too long', async () => {
    const db = new Kysely<ItemsDB>({
      dialect: new PGliteDialect({ pglite, name: 'portal', acquireTimeoutMillis: 50 }),
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const long = db.transaction().execute(async (trx) => {
      await sql`select 1`.execute(trx);
      await gate;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));

    const err = await sql`select 1`.execute(db).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_DB_BUSY' });
    expect((err as Error).message).toMatch(
      /Gave up waiting 50 ms for the portal database \(PGlite\)/,
    );

    release();
    await long;
    await sql`select 1`.execute(db); // free again
    await db.destroy();
  });

  it('on destroy, lets a running transaction finish, then refuses new queries', async () => {
    const db = new Kysely<ItemsDB>({ dialect: new PGliteDialect({ pglite }) });
    await sql`create table items (id integer primary key, name text not null)`.execute(db);
    const order: string[] = [];
    const tx = db.transaction().execute(async (trx) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await trx.insertInto('items').values({ id: 1, name: 'a' }).execute();
      order.push('transaction done');
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const destroyed = db.destroy().then(() => order.push('destroyed'));
    await tx;
    await destroyed;
    expect(order).toEqual(['transaction done', 'destroyed']);
    expect(pglite.closed).toBe(true);
    const err = await sql`select 1`.execute(db).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
  });
});
