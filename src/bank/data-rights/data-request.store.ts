import { sql, type Kysely } from 'kysely';

/** Every exercise of a data right at the bank is recorded (J12). */
export interface DataRequestTable {
  id: string;
  customer_id: string;
  kind: 'export' | 'correction' | 'deletion';
  /** Sealed free text (a correction request), or null. */
  details: string | null;
  status: 'done' | 'received';
  created_at: Date;
}

export interface DataRequestTables {
  data_requests: DataRequestTable;
}

export async function createDataRequestTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table data_requests (
      id text primary key,
      customer_id text not null references customers (id),
      kind text not null check (kind in ('export', 'correction', 'deletion')),
      details text,
      status text not null check (status in ('done', 'received')),
      created_at timestamptz not null
    )`.execute(db);
  await sql`create index data_requests_customer_idx on data_requests (customer_id, created_at desc)`.execute(
    db,
  );
}

export function createDataRequestStore(db: Kysely<DataRequestTables>) {
  return {
    async insert(row: DataRequestTable): Promise<void> {
      await db.insertInto('data_requests').values(row).execute();
    },
    async list(customerId: string): Promise<DataRequestTable[]> {
      return db
        .selectFrom('data_requests')
        .selectAll()
        .where('customer_id', '=', customerId)
        .orderBy('created_at', 'desc')
        .execute();
    },
  };
}

export type DataRequestStore = ReturnType<typeof createDataRequestStore>;
