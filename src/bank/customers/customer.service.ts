import type { Clock } from '../../platform/clock.js';
import {
  hashPassword,
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { LoginAccount } from '../../platform/login/login-routes.js';
import type { BankRole, CustomerStore } from './customer.store.js';

/** What the bank itself knows about its customer (before any portal data arrives). */
export interface CustomerPersonalData {
  lastName: string;
  firstName: string;
  middleName?: string | undefined;
  /** YYYY-MM-DD */
  birthDate: string;
  phone: string;
  email?: string | undefined;
}

export interface Customer {
  id: string;
  username: string;
  /** «Номер клиента»: what the customer enters on the portal to connect the bank (J1). */
  clientNumber: string;
  roles: BankRole[];
  personal: CustomerPersonalData;
  personalUpdatedAt: Date;
  createdAt: Date;
}

export function createCustomerService(deps: {
  store: CustomerStore;
  sealer: Sealer;
  clock: Clock;
  ids: IdGenerator;
}) {
  const { store, sealer } = deps;
  const aad = (id: string) => recordAad('customers', id, 'personal');

  return {
    async create(input: {
      username: string;
      password: string;
      roles?: BankRole[];
      personal: CustomerPersonalData;
    }): Promise<string> {
      const id = deps.ids.uuid();
      const now = deps.clock.now();
      await store.insert({
        id,
        username: input.username.toLowerCase(),
        password_hash: await hashPassword(input.password),
        roles: input.roles ?? ['customer'],
        blocked: false,
        personal: serializeSealed(await sealer.seal(input.personal, aad(id))),
        personal_updated_at: now,
        created_at: now,
      });
      return id;
    },

    findIdByUsername: (username: string) => store.findIdByUsername(username.trim().toLowerCase()),
    findIdByClientNumber: (clientNumber: string) => store.findIdByClientNumber(clientNumber.trim()),

    async get(id: string): Promise<Customer | undefined> {
      const row = await store.get(id);
      if (!row) return undefined;
      return {
        id: row.id,
        username: row.username,
        clientNumber: row.client_number,
        roles: row.roles,
        personal: await sealer.openJson<CustomerPersonalData>(parseSealed(row.personal), aad(id)),
        personalUpdatedAt: new Date(row.personal_updated_at),
        createdAt: new Date(row.created_at),
      };
    },

    async loginAccount(id: string): Promise<LoginAccount | undefined> {
      const row = await store.get(id);
      if (!row) return undefined;
      const personal = await sealer.openJson<CustomerPersonalData>(
        parseSealed(row.personal),
        aad(id),
      );
      return {
        id: row.id,
        passwordHash: row.password_hash,
        secondFactor: 'sms',
        phone: personal.phone,
        blocked: row.blocked,
      };
    },
  };
}

export type CustomerService = ReturnType<typeof createCustomerService>;
