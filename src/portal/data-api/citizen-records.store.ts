import { sql, type Kysely } from 'kysely';

/**
 * A citizen's state service applications and benefit payments. Everything about a record
 * is in `details`, sealed; only the owner and the time of the last write are in the clear.
 */
export interface CitizenRecordTable {
  id: string;
  citizen_id: string;
  /** serializeSealed(…) of the order or payment, AAD recordAad(table, id, 'details'). */
  details: string;
  updated_at: Date;
}

export interface CitizenRecordTables {
  citizen_orders: CitizenRecordTable;
  citizen_payments: CitizenRecordTable;
}

export type CitizenRecordTableName = keyof CitizenRecordTables;

/**
 * The tables, for a portal migration (after `citizens`). Plain SQL that PostgreSQL 15 and
 * PGlite (PostgreSQL 18) both run; the index serves the per-citizen listing and the
 * cascade when a citizen is deleted.
 */
export async function createCitizenRecordTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table citizen_orders (
      id text primary key,
      citizen_id text not null references citizens (id) on delete cascade,
      details text not null,
      updated_at timestamptz not null
    )`.execute(db);
  await sql`create index citizen_orders_citizen_id_idx on citizen_orders (citizen_id)`.execute(db);
  await sql`
    create table citizen_payments (
      id text primary key,
      citizen_id text not null references citizens (id) on delete cascade,
      details text not null,
      updated_at timestamptz not null
    )`.execute(db);
  await sql`create index citizen_payments_citizen_id_idx on citizen_payments (citizen_id)`.execute(
    db,
  );
}

export function createCitizenRecordStore(db: Kysely<CitizenRecordTables>) {
  return {
    async insert(table: CitizenRecordTableName, rows: readonly CitizenRecordTable[]) {
      if (rows.length === 0) return;
      await db
        .insertInto(table)
        .values([...rows])
        .execute();
    },

    /** Oldest write first; the service orders them the way people read them. */
    async listByCitizen(
      table: CitizenRecordTableName,
      citizenId: string,
    ): Promise<CitizenRecordTable[]> {
      const rows = await db
        .selectFrom(table)
        .selectAll()
        .where('citizen_id', '=', citizenId)
        .orderBy('updated_at')
        .orderBy('id')
        .execute();
      return rows.map((r) => ({ ...r, updated_at: new Date(r.updated_at) }));
    },

    async updateDetails(
      table: CitizenRecordTableName,
      id: string,
      citizenId: string,
      details: string,
      updatedAt: Date,
    ): Promise<boolean> {
      const result = await db
        .updateTable(table)
        .set({ details, updated_at: updatedAt })
        .where('id', '=', id)
        .where('citizen_id', '=', citizenId)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    /** How many records of each kind the citizen has. */
    async counts(citizenId: string): Promise<{ orders: number; payments: number }> {
      const row = await db
        .selectNoFrom((eb) => [
          eb
            .selectFrom('citizen_orders')
            .select((e) => e.fn.countAll<string>().as('n'))
            .where('citizen_id', '=', citizenId)
            .as('orders'),
          eb
            .selectFrom('citizen_payments')
            .select((e) => e.fn.countAll<string>().as('n'))
            .where('citizen_id', '=', citizenId)
            .as('payments'),
        ])
        .executeTakeFirstOrThrow();
      return { orders: Number(row.orders), payments: Number(row.payments) };
    },

    /**
     * Locks the citizen's row until the transaction ends, so that two writers deciding
     * "this citizen has no records yet" take turns. False when there is no such citizen.
     */
    async lockCitizen(citizenId: string): Promise<boolean> {
      const result = await sql<{
        id: string;
      }>`select id from citizens where id = ${citizenId} for update`.execute(db);
      return result.rows.length > 0;
    },
  };
}

export type CitizenRecordStore = ReturnType<typeof createCitizenRecordStore>;
