import type { Generated, Insertable, Kysely } from 'kysely';

export type BankRole = 'customer' | 'operator';

export interface CustomerTable {
  id: string;
  username: string;
  password_hash: string;
  roles: BankRole[];
  blocked: boolean;
  /** Sealed CustomerPersonalData. */
  personal: string;
  personal_updated_at: Date;
  created_at: Date;
  /** The customer's number at the bank (J1: what they type on the portal), from a sequence. */
  client_number: Generated<string>;
}

export interface CustomerTables {
  customers: CustomerTable;
}

export function createCustomerStore(db: Kysely<CustomerTables>) {
  return {
    async insert(row: Insertable<CustomerTable>): Promise<void> {
      await db.insertInto('customers').values(row).execute();
    },
    async findIdByUsername(username: string): Promise<string | undefined> {
      const row = await db
        .selectFrom('customers')
        .select('id')
        .where('username', '=', username)
        .executeTakeFirst();
      return row?.id;
    },
    async findIdByClientNumber(clientNumber: string): Promise<string | undefined> {
      const row = await db
        .selectFrom('customers')
        .select('id')
        .where('client_number', '=', clientNumber)
        .executeTakeFirst();
      return row?.id;
    },
    async get(id: string) {
      return db.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirst();
    },
  };
}

export type CustomerStore = ReturnType<typeof createCustomerStore>;
