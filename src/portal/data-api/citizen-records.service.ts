import type { Kysely } from 'kysely';
import type { Clock } from '../../platform/clock.js';
import {
  CryptoError,
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import { inTransaction } from '../../platform/db/index.js';
import type { IdGenerator } from '../../platform/ids.js';
import {
  ORDER_STATUS_TEXT,
  assertCitizenOrder,
  assertCitizenPayment,
  type CitizenOrder,
  type CitizenPayment,
  type CitizenRecords,
  type OrderStatus,
} from './citizen-record.js';
import {
  createCitizenRecordStore,
  type CitizenRecordTable,
  type CitizenRecordTableName,
  type CitizenRecordTables,
} from './citizen-records.store.js';

export interface CitizenRecordServiceDeps {
  db: Kysely<CitizenRecordTables>;
  sealer: Sealer;
  clock: Clock;
  ids: IdGenerator;
}

/** An order as filed; `statusText` defaults to the usual wording of its status. */
export type NewCitizenOrder = Omit<CitizenOrder, 'statusText'> & { statusText?: string };

export interface OrderStatusChange {
  status: OrderStatus;
  statusText?: string;
  certificateNumber?: string;
  /** When the department changed it; the service clock by default. */
  at?: Date;
}

/**
 * What is sealed: the record and the citizen it belongs to. The AAD names the row, and
 * the owner inside the ciphertext stops a row from being handed to another citizen by
 * rewriting its clear `citizen_id`.
 */
interface SealedDetails<T> {
  owner: string;
  details: T;
}

function notOnFile(what: string): TypeError {
  return new TypeError(`citizen records: ${what}`);
}

/** Applications for state services and benefit payments, sealed at rest. */
export function createCitizenRecordService(deps: CitizenRecordServiceDeps) {
  const { db, sealer, clock, ids } = deps;
  const aad = (table: CitizenRecordTableName, id: string) => recordAad(table, id, 'details');

  async function sealRow<T>(
    table: CitizenRecordTableName,
    citizenId: string,
    details: T,
    id = ids.uuid(),
  ): Promise<CitizenRecordTable> {
    const payload: SealedDetails<T> = { owner: citizenId, details };
    return {
      id,
      citizen_id: citizenId,
      details: serializeSealed(await sealer.seal(payload, aad(table, id))),
      updated_at: clock.now(),
    };
  }

  async function openRow<T>(table: CitizenRecordTableName, row: CitizenRecordTable): Promise<T> {
    const payload = await sealer.openJson<SealedDetails<T>>(
      parseSealed(row.details),
      aad(table, row.id),
    );
    if (payload.owner !== row.citizen_id) {
      throw new CryptoError('ERR_DECRYPT_FAILED', 'decryption failed');
    }
    return payload.details;
  }

  async function openAll<T>(
    store: ReturnType<typeof createCitizenRecordStore>,
    table: CitizenRecordTableName,
    citizenId: string,
  ): Promise<{ row: CitizenRecordTable; details: T }[]> {
    const rows = await store.listByCitizen(table, citizenId);
    return Promise.all(rows.map(async (row) => ({ row, details: await openRow<T>(table, row) })));
  }

  function completeOrder(order: NewCitizenOrder): CitizenOrder {
    const complete: CitizenOrder = {
      number: order.number,
      serviceName: order.serviceName,
      status: order.status,
      statusText: order.statusText ?? ORDER_STATUS_TEXT[order.status],
      submittedAt: order.submittedAt,
      updatedAt: order.updatedAt,
      ...(order.certificateNumber === undefined
        ? {}
        : { certificateNumber: order.certificateNumber }),
    };
    assertCitizenOrder(complete);
    return complete;
  }

  function completePayment(payment: CitizenPayment): CitizenPayment {
    const complete: CitizenPayment = {
      id: payment.id,
      kind: payment.kind,
      name: payment.name,
      amount: payment.amount,
      currency: payment.currency,
      paidAt: payment.paidAt,
      payer: payment.payer,
    };
    assertCitizenPayment(complete);
    return complete;
  }

  /**
   * Writes sealed rows in one transaction, holding the citizen's row lock so that
   * concurrent writers see each other's records; `check` may refuse the write.
   */
  async function write(
    citizenId: string,
    rows: { orders: CitizenRecordTable[]; payments: CitizenRecordTable[] },
    check: (
      existing: { orders: CitizenOrder[]; payments: CitizenPayment[] },
      counts: { orders: number; payments: number },
    ) => boolean,
    needDetails: boolean,
  ): Promise<boolean> {
    return inTransaction(db, async (trx) => {
      const store = createCitizenRecordStore(trx);
      if (!(await store.lockCitizen(citizenId))) throw notOnFile('no such citizen');
      const counts = await store.counts(citizenId);
      const existing = needDetails
        ? {
            orders: (await openAll<CitizenOrder>(store, 'citizen_orders', citizenId)).map(
              (r) => r.details,
            ),
            payments: (await openAll<CitizenPayment>(store, 'citizen_payments', citizenId)).map(
              (r) => r.details,
            ),
          }
        : { orders: [], payments: [] };
      if (!check(existing, counts)) return false;
      await store.insert('citizen_orders', rows.orders);
      await store.insert('citizen_payments', rows.payments);
      return true;
    });
  }

  const newestOrderFirst = (a: CitizenOrder, b: CitizenOrder) =>
    Date.parse(b.submittedAt) - Date.parse(a.submittedAt) || a.number.localeCompare(b.number);
  const newestPaymentFirst = (a: CitizenPayment, b: CitizenPayment) =>
    b.paidAt.localeCompare(a.paidAt) || a.id.localeCompare(b.id);

  function assertUniqueNumbers(orders: readonly CitizenOrder[]) {
    const seen = new Set<string>();
    for (const o of orders) {
      if (seen.has(o.number)) throw notOnFile(`order ${o.number} is already on file`);
      seen.add(o.number);
    }
  }

  const service = {
    /** Files an order; its number must be new for this citizen. Returns it as stored. */
    async addOrder(citizenId: string, order: NewCitizenOrder): Promise<CitizenOrder> {
      const complete = completeOrder(order);
      const row = await sealRow('citizen_orders', citizenId, complete);
      await write(
        citizenId,
        { orders: [row], payments: [] },
        (existing) => {
          assertUniqueNumbers([...existing.orders, complete]);
          return true;
        },
        true,
      );
      return complete;
    },

    /** Registers a payment; its `id` must be new for this citizen. */
    async addPayment(citizenId: string, payment: CitizenPayment): Promise<CitizenPayment> {
      const complete = completePayment(payment);
      const row = await sealRow('citizen_payments', citizenId, complete);
      await write(
        citizenId,
        { orders: [], payments: [row] },
        (existing) => {
          if (existing.payments.some((p) => p.id === complete.id)) {
            throw notOnFile(`payment ${complete.id} is already on file`);
          }
          return true;
        },
        true,
      );
      return complete;
    },

    /** The citizen's orders, most recently submitted first. */
    async listOrders(citizenId: string): Promise<CitizenOrder[]> {
      const store = createCitizenRecordStore(db);
      const all = await openAll<CitizenOrder>(store, 'citizen_orders', citizenId);
      return all.map((r) => r.details).sort(newestOrderFirst);
    },

    /** The citizen's payments, most recently paid first. */
    async listPayments(citizenId: string): Promise<CitizenPayment[]> {
      const store = createCitizenRecordStore(db);
      const all = await openAll<CitizenPayment>(store, 'citizen_payments', citizenId);
      return all.map((r) => r.details).sort(newestPaymentFirst);
    },

    /** Both lists, as the consent preview and the data API take them. */
    async records(citizenId: string): Promise<CitizenRecords> {
      const [orders, payments] = await Promise.all([
        service.listOrders(citizenId),
        service.listPayments(citizenId),
      ]);
      return { orders, payments };
    },

    async findOrderByNumber(citizenId: string, number: string): Promise<CitizenOrder | undefined> {
      return (await service.listOrders(citizenId)).find((o) => o.number === number);
    },

    /**
     * Records a department's decision on an order. Returns the order as it now stands, or
     * undefined when the citizen has no order with that number.
     */
    async updateOrderStatus(
      citizenId: string,
      number: string,
      change: OrderStatusChange,
    ): Promise<CitizenOrder | undefined> {
      return inTransaction(db, async (trx) => {
        const store = createCitizenRecordStore(trx);
        if (!(await store.lockCitizen(citizenId))) return undefined;
        const all = await openAll<CitizenOrder>(store, 'citizen_orders', citizenId);
        const found = all.find((r) => r.details.number === number);
        if (!found) return undefined;
        const certificateNumber = change.certificateNumber ?? found.details.certificateNumber;
        const updated = completeOrder({
          ...found.details,
          status: change.status,
          statusText: change.statusText ?? ORDER_STATUS_TEXT[change.status],
          updatedAt: (change.at ?? clock.now()).toISOString(),
          certificateNumber,
        });
        const row = await sealRow('citizen_orders', citizenId, updated, found.row.id);
        await store.updateDetails('citizen_orders', row.id, citizenId, row.details, row.updated_at);
        return updated;
      });
    },

    /**
     * Files the records only when the citizen has none of either kind yet (the demo seed).
     * Returns whether anything was written.
     */
    async addInitialRecords(
      citizenId: string,
      records: { orders: readonly NewCitizenOrder[]; payments: readonly CitizenPayment[] },
    ): Promise<boolean> {
      const orders = records.orders.map(completeOrder);
      const payments = records.payments.map(completePayment);
      assertUniqueNumbers(orders);
      if (orders.length === 0 && payments.length === 0) return false;
      const rows = {
        orders: await Promise.all(orders.map((o) => sealRow('citizen_orders', citizenId, o))),
        payments: await Promise.all(payments.map((p) => sealRow('citizen_payments', citizenId, p))),
      };
      return write(citizenId, rows, (_, counts) => counts.orders + counts.payments === 0, false);
    },
  };
  return service;
}

export type CitizenRecordService = ReturnType<typeof createCitizenRecordService>;

/**
 * CONTRACT.md: Иванов has state service applications and benefit payments on file, so a
 * bank has something to read; Петрова has one application and no payments. Fixed values,
 * the same on every machine.
 */
export function demoRecordsFor(lastName: string): {
  orders: CitizenOrder[];
  payments: CitizenPayment[];
} {
  const { orders, payments } = demoRecordsAsFiled(lastName);
  return {
    orders: orders.map((o) => ({ ...o, statusText: o.statusText ?? ORDER_STATUS_TEXT[o.status] })),
    payments,
  };
}

function demoRecordsAsFiled(lastName: string): {
  orders: NewCitizenOrder[];
  payments: CitizenPayment[];
} {
  switch (lastName) {
    case 'Иванов':
      return {
        orders: [
          {
            number: '2026-0001234567',
            serviceName: 'Регистрация по месту жительства',
            status: 'DONE',
            submittedAt: '2026-09-14T07:12:00.000Z',
            updatedAt: '2026-09-21T11:40:00.000Z',
            certificateNumber: '77-2026-0045123',
          },
          {
            number: '2026-0001873204',
            serviceName: 'Получение справки о наличии (отсутствии) судимости',
            status: 'IN_PROGRESS',
            submittedAt: '2026-11-18T09:05:00.000Z',
            updatedAt: '2026-11-19T06:30:00.000Z',
          },
          {
            number: '2026-0001530918',
            serviceName: 'Регистрация транспортного средства',
            status: 'REJECTED',
            statusText: 'Отказано: не представлен полис ОСАГО',
            submittedAt: '2026-10-02T15:47:00.000Z',
            updatedAt: '2026-10-06T08:15:00.000Z',
          },
        ],
        payments: [
          {
            id: 'EGISSO-2026-000187452',
            kind: 'BENEFIT',
            name: 'Пособие по временной нетрудоспособности',
            amount: '23417.81',
            currency: 'RUB',
            paidAt: '2026-10-27',
            payer: 'Социальный фонд России',
          },
          {
            id: 'EGISSO-2026-000203119',
            kind: 'COMPENSATION',
            name: 'Компенсация расходов на оплату жилого помещения и коммунальных услуг',
            amount: '1850.40',
            currency: 'RUB',
            paidAt: '2026-11-10',
            payer: 'Департамент труда и социальной защиты населения города Москвы',
          },
        ],
      };
    case 'Петрова':
      return {
        orders: [
          {
            number: '2026-0001911575',
            serviceName: 'Оформление заграничного паспорта нового образца',
            status: 'SUBMITTED',
            submittedAt: '2026-11-28T12:20:00.000Z',
            updatedAt: '2026-11-28T12:20:00.000Z',
          },
        ],
        payments: [],
      };
    default:
      return { orders: [], payments: [] };
  }
}

/**
 * Files the demo records of the persona with that last name, unless the citizen already
 * has records of their own (a restart, or a second instance seeding at the same time).
 * Returns whether anything was written.
 */
export async function seedCitizenRecords(
  service: CitizenRecordService,
  citizenId: string,
  lastName: string,
): Promise<boolean> {
  const records = demoRecordsFor(lastName);
  if (records.orders.length === 0 && records.payments.length === 0) return false;
  return service.addInitialRecords(citizenId, records);
}
