import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../../platform/clock.js';
import {
  CryptoError,
  createSealer,
  memoryKeyring,
  parseSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import { migrateToLatest, openDatabase } from '../../platform/db/index.js';
import { randomIds } from '../../platform/ids.js';
import type { CitizenPayment } from './citizen-record.js';
import {
  createCitizenRecordService,
  demoRecordsFor,
  seedCitizenRecords,
  type CitizenRecordService,
  type NewCitizenOrder,
} from './citizen-records.service.js';
import { createCitizenRecordTables, type CitizenRecordTables } from './citizen-records.store.js';

const ORDER: NewCitizenOrder = {
  number: '2026-0000000042',
  serviceName: 'Регистрация по месту пребывания',
  status: 'SUBMITTED',
  submittedAt: '2026-11-02T10:00:00.000Z',
  updatedAt: '2026-11-02T10:00:00.000Z',
};

const PAYMENT: CitizenPayment = {
  id: 'EGISSO-TEST-0001',
  kind: 'SUBSIDY',
  name: 'Субсидия на оплату жилого помещения',
  amount: '4321.09',
  currency: 'RUB',
  paidAt: '2026-11-05',
  payer: 'Управление социальной защиты населения',
};

describeEachEngine('citizen records', (engine) => {
  let database: FreshDatabase<CitizenRecordTables>;
  let service: CitizenRecordService;
  let sealer: Sealer;
  let clock: ReturnType<typeof manualClock>;

  async function addCitizen(id: string) {
    await sql`
insert into citizens (id) values (${id})`.execute(database.db);
  }

  async function dump(): Promise<string> {
    const orders = await database.db.selectFrom('citizen_orders').selectAll().execute();
    const payments = await database.db.selectFrom('citizen_payments').selectAll().execute();
    return JSON.stringify([orders, payments]);
  }

  beforeEach(async () => {
    clock = manualClock('2026-12-01T09:00:00Z');
    database = await freshDatabase<CitizenRecordTables>(engine);
    // Run as a migration (one transaction), after a citizens table with just what the
    // foreign key needs; the portal's own migrations are tested with the portal.
    await migrateToLatest(database, {
      '0001_citizens': {
        up: (db: Kysely<never>) =>
          sql`create table citizens (id text primary key)`.execute(db).then(() => undefined),
      },
      '0002_citizen_records': {
        up: (db: Kysely<never>) => createCitizenRecordTables(db),
      },
    });
    sealer = createSealer(memoryKeyring());
    service = createCitizenRecordService({
      db: database.db,
      sealer,
      clock,
      ids: randomIds,
    });
    await addCitizen('c-1');
    await addCitizen('c-2');
  });
  afterEach(async () => {
    await database.close();
  });

  it('files orders and payments and lists them newest first', async () => {
    const older = { ...ORDER, number: '2026-0000000001', submittedAt: '2026-01-10T08:00:00Z' };
    expect(await service.addOrder('c-1', ORDER)).toEqual({
      ...ORDER,
      statusText: 'Заявление отправлено',
    });
    await service.addOrder('c-1', older);
    await service.addPayment('c-1', { ...PAYMENT, id: 'P-OLD', paidAt: '2025-12-31' });
    await service.addPayment('c-1', PAYMENT);

    expect((await service.listOrders('c-1')).map((o) => o.number)).toEqual([
      ORDER.number,
      older.number,
    ]);
    expect((await service.listPayments('c-1')).map((p) => p.id)).toEqual([PAYMENT.id, 'P-OLD']);
    expect(await service.findOrderByNumber('c-1', older.number)).toMatchObject({
      serviceName: ORDER.serviceName,
      status: 'SUBMITTED',
    });
    expect(await service.findOrderByNumber('c-1', '2026-9999999999')).toBeUndefined();
  });

  it("keeps one citizen's records from another", async () => {
    await service.addOrder('c-1', ORDER);
    await service.addPayment('c-1', PAYMENT);
    expect(await service.records('c-2')).toEqual({ orders: [], payments: [] });
    expect(await service.findOrderByNumber('c-2', ORDER.number)).toBeUndefined();
  });

  it('stores no record detail in the clear', async () => {
    await service.addOrder('c-1', { ...ORDER, certificateNumber: 'СВ-77-000123' });
    await service.addPayment('c-1', PAYMENT);
    const rows = await database.db.selectFrom('citizen_orders').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(parseSealed(rows[0]!.details).ct).toBeTruthy();
    const text = await dump();
    for (const clear of [
      ORDER.number,
      '0000000042',
      ORDER.serviceName,
      'Заявление отправлено',
      'SUBMITTED',
      'СВ-77-000123',
      PAYMENT.id,
      PAYMENT.name,
      PAYMENT.amount,
      PAYMENT.payer,
      'SUBSIDY',
      PAYMENT.paidAt,
    ]) {
      expect(text, clear).not.toContain(clear);
    }
    expect(new Date(rows[0]!.updated_at).toISOString()).toBe('2026-12-01T09:00:00.000Z');
  });

  it('refuses a row handed to another citizen or copied to another row', async () => {
    await service.addOrder('c-1', ORDER);
    await service.addOrder('c-2', { ...ORDER, number: '2026-0000000077' });
    // Someone with write access to the table moves c-1's order to c-2.
    await database.db
      .updateTable('citizen_orders')
      .set({ citizen_id: 'c-2' })
      .where('citizen_id', '=', 'c-1')
      .execute();
    await expect(service.listOrders('c-2')).rejects.toMatchObject({
      code: 'ERR_DECRYPT_FAILED',
    });

    // And one ciphertext pasted over another row of the same citizen.
    const rows = await database.db.selectFrom('citizen_orders').selectAll().execute();
    await database.db
      .updateTable('citizen_orders')
      .set({ citizen_id: 'c-2', details: rows[0]!.details })
      .where('id', '=', rows[1]!.id)
      .execute();
    await database.db.deleteFrom('citizen_orders').where('id', '=', rows[0]!.id).execute();
    const err = await service.listOrders('c-2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CryptoError);
  });

  it('rejects malformed and duplicate records without writing them', async () => {
    await service.addOrder('c-1', ORDER);
    await expect(service.addOrder('c-1', ORDER)).rejects.toThrow(/already on file/);
    await expect(
      service.addOrder('c-1', { ...ORDER, number: '42', status: 'SUBMITTED' }),
    ).rejects.toThrow(TypeError);
    await expect(
      service.addOrder('c-1', {
        ...ORDER,
        number: '2026-0000000043',
        status: 'LOST' as 'DONE',
      }),
    ).rejects.toThrow(TypeError);
    await service.addPayment('c-1', PAYMENT);
    await expect(service.addPayment('c-1', PAYMENT)).rejects.toThrow(/already on file/);
    for (const amount of ['12.5', '-1.00', '1e3', '12 345.67', '1234,56']) {
      await expect(
        service.addPayment('c-1', { ...PAYMENT, id: `P-${amount}`, amount }),
        amount,
      ).rejects.toThrow(TypeError);
    }
    await expect(
      service.addPayment('c-1', { ...PAYMENT, id: 'P-date', paidAt: '2026-02-30' }),
    ).rejects.toThrow(TypeError);
    await expect(service.addOrder('nobody', ORDER)).rejects.toThrow(/no such citizen/);
    expect((await service.listOrders('c-1')).length).toBe(1);
    expect((await service.listPayments('c-1')).length).toBe(1);
  });

  it('records a status change with its certificate number', async () => {
    await service.addOrder('c-1', ORDER);
    clock.set('2026-12-02T12:00:00Z');
    const done = await service.updateOrderStatus('c-1', ORDER.number, {
      status: 'DONE',
      certificateNumber: '77-2026-0000099',
    });
    expect(done).toMatchObject({
      status: 'DONE',
      statusText: 'Услуга оказана',
      certificateNumber: '77-2026-0000099',
      updatedAt: '2026-12-02T12:00:00.000Z',
      submittedAt: ORDER.submittedAt,
    });
    expect(await service.findOrderByNumber('c-1', ORDER.number)).toEqual(done);
    expect(
      await service.updateOrderStatus('c-2', ORDER.number, { status: 'REJECTED' }),
    ).toBeUndefined();
  });

  it('seeds the demo records once', async () => {
    expect(await seedCitizenRecords(service, 'c-1', 'Иванов')).toBe(true);
    expect(await seedCitizenRecords(service, 'c-1', 'Иванов')).toBe(false);
    const { orders, payments } = await service.records('c-1');
    expect(orders).toHaveLength(3);
    expect(new Set(orders.map((o) => o.status)).size).toBe(3);
    const done = orders.filter((o) => o.status === 'DONE');
    expect(done).toHaveLength(1);
    expect(done[0]!.certificateNumber).toBeTruthy();
    expect(payments).toHaveLength(2);
    expect(new Set([...orders, ...payments])).toEqual(
      new Set([...demoRecordsFor('Иванов').orders, ...demoRecordsFor('Иванов').payments]),
    );

    expect(await seedCitizenRecords(service, 'c-2', 'Петрова')).toBe(true);
    expect((await service.listOrders('c-2')).length).toBe(1);
    expect((await service.listPayments('c-2')).length).toBe(0);
  });

  it('does not seed over records the citizen already has, nor for other personas', async () => {
    await service.addPayment('c-1', PAYMENT);
    expect(await seedCitizenRecords(service, 'c-1', 'Иванов')).toBe(false);
    expect(await service.records('c-1')).toEqual({ orders: [], payments: [PAYMENT] });
    expect(await seedCitizenRecords(service, 'c-2', 'Смирнова')).toBe(false);
    expect(await service.records('c-2')).toEqual({ orders: [], payments: [] });
  });

  it('seeds once when two instances start together', async () => {
    // On PostgreSQL the second instance has its own pool, and every insert is held back
    // until both have looked for existing records: without the citizen row lock, both
    // would find none and both would seed. (PGlite has one connection: it serialises.)
    const second =
      engine.name === 'postgres' && database.url
        ? await openDatabase<CitizenRecordTables>({ name: 'second', url: database.url })
        : undefined;
    const blocker = second ? new pg.Client({ connectionString: database.url }) : undefined;
    try {
      const other = second
        ? createCitizenRecordService({ db: second.db, sealer, clock, ids: randomIds })
        : service;
      if (blocker) {
        await blocker.connect();
        await blocker.query('begin');
        await blocker.query('lock table citizen_orders in share mode');
      }
      const seeding = Promise.all([
        seedCitizenRecords(service, 'c-1', 'Иванов'),
        seedCitizenRecords(other, 'c-1', 'Иванов'),
      ]);
      if (blocker) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        await blocker.query('commit');
      }
      expect((await seeding).filter(Boolean)).toHaveLength(1);
      expect((await service.listOrders('c-1')).length).toBe(3);
      expect((await service.listPayments('c-1')).length).toBe(2);
    } finally {
      await blocker?.end();
      await second?.close();
    }
  });

  it("goes with the citizen's account", async () => {
    await seedCitizenRecords(service, 'c-1', 'Иванов');
    await sql`delete from citizens where id = 'c-1'`.execute(database.db);
    expect(await dump()).toBe('[[],[]]');
  });
});
