import { isAbortedTransactionError, sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { inTransaction } from './transaction.js';

interface TestDB {
  counter: { id: number; value: number };
  notes: { id: number; text: string };
}

describeEachEngine('transactions', (engine) => {
  let database: FreshDatabase<TestDB>;
  let db: Kysely<TestDB>;

  beforeEach(async () => {
    database = await freshDatabase<TestDB>(engine);
    db = database.db;
    await sql`create table counter (id integer primary key, value integer not null)`.execute(db);
    await sql`create table notes (id integer primary key, text text not null)`.execute(db);
    await db.insertInto('counter').values({ id: 1, value: 0 }).execute();
  });
  afterEach(async () => {
    await database.close();
  });

  const notes = async () =>
    (await db.selectFrom('notes').select('text').orderBy('id').execute()).map((r) => r.text);

  it('commits when the function resolves', async () => {
    const result = await inTransaction(db, async (trx) => {
      await trx.insertInto('notes').values({ id: 1, text: 'kept' }).execute();
      return 'done';
    });
    expect(result).toBe('done');
    expect(await notes()).toEqual(['kept']);
  });

  it('rolls back when the function throws, and rethrows', async () => {
    const err = await inTransaction(db, async (trx) => {
      await trx.insertInto('notes').values({ id: 1, text: 'lost' }).execute();
      await trx.updateTable('counter').set({ value: 99 }).execute();
      throw new Error('boom');
    }).catch((e: unknown) => e);

    expect((err as Error).message).toBe('boom');
    expect(await notes()).toEqual([]);
    expect(await db.selectFrom('counter').select('value').executeTakeFirstOrThrow()).toEqual({
      value: 0,
    });
  });

  it('joins the outer transaction when given a transaction (nested use)', async () => {
    const addNote = (k: Kysely<TestDB>, id: number) =>
      inTransaction(k, (trx) =>
        trx
          .insertInto('notes')
          .values({ id, text: `n${id}` })
          .execute(),
      );

    await inTransaction(db, async (trx) => {
      await addNote(trx, 1);
      await addNote(trx, 2);
      throw new Error('undo both');
    }).catch(() => undefined);
    expect(await notes()).toEqual([]);

    await inTransaction(db, async (trx) => {
      await addNote(trx, 1);
      await addNote(trx, 2);
    });
    expect(await notes()).toEqual(['n1', 'n2']);
  });

  it('reports a transaction aborted by a caught error instead of committing it', async () => {
    const err = await inTransaction(db, async (trx) => {
      await trx.insertInto('notes').values({ id: 1, text: 'first' }).execute();
      // A duplicate key aborts the transaction; catching the error does not undo that.
      await trx
        .insertInto('notes')
        .values({ id: 1, text: 'duplicate' })
        .execute()
        .catch(() => undefined);
    }).catch((e: unknown) => e);

    expect(isAbortedTransactionError(err)).toBe(true);
    expect(await notes()).toEqual([]);
  });

  it('runs 20 concurrent read-increment-write transactions without losing one', async () => {
    // On PGlite the driver serialises transactions on its single connection, so a plain
    // read-then-write is safe. On PostgreSQL concurrent transactions really overlap, so the
    // read must lock the row (FOR UPDATE), which is what the stores do.
    await Promise.all(
      Array.from({ length: 20 }, () =>
        inTransaction(db, async (trx) => {
          let read = trx.selectFrom('counter').select('value').where('id', '=', 1);
          if (engine.name === 'postgres') read = read.forUpdate();
          const { value } = await read.executeTakeFirstOrThrow();
          await new Promise((resolve) => setTimeout(resolve, 2)); // widen the race window
          await trx
            .updateTable('counter')
            .set({ value: value + 1 })
            .where('id', '=', 1)
            .execute();
        }),
      ),
    );
    expect(await db.selectFrom('counter').select('value').executeTakeFirstOrThrow()).toEqual({
      value: 20,
    });
  });

  it('keeps other queries out of a running transaction', async () => {
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const transaction = inTransaction(db, async (trx) => {
      await trx.updateTable('counter').set({ value: 5 }).execute();
      entered();
      await gate;
      await trx.updateTable('counter').set({ value: 6 }).execute();
    });
    await inside;
    // A query from elsewhere in the program while the transaction is open.
    const outside = db.selectFrom('counter').select('value').executeTakeFirstOrThrow();
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await transaction;
    // Never the uncommitted 5: PGlite queues it until COMMIT (6), PostgreSQL isolates it (0).
    expect((await outside).value).toBe(engine.name === 'pglite' ? 6 : 0);
  });

  if (engine.name === 'pglite') {
    it('fails fast, instead of deadlocking, when code in a transaction uses db instead of trx', async () => {
      const err = await inTransaction(db, async (trx) => {
        await trx.insertInto('notes').values({ id: 1, text: 'x' }).execute();
        await db.selectFrom('notes').selectAll().execute(); // the mistake
      }).catch((e: unknown) => e);

      expect(err).toMatchObject({ code: 'ERR_DB_BUSY' });
      expect((err as Error).message).toMatch(/Pass the transaction \(trx\) down/);
      expect(await notes()).toEqual([]); // rolled back, and the connection is free again
    });
  }

  it('supports savepoints in controlled transactions', async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto('notes').values({ id: 1, text: 'kept' }).execute();
    const sp = await trx.savepoint('before_second').execute();
    await sp.insertInto('notes').values({ id: 2, text: 'undone' }).execute();
    const back = await sp.rollbackToSavepoint('before_second').execute();
    await back.commit().execute();
    expect(await notes()).toEqual(['kept']);
  });
});
