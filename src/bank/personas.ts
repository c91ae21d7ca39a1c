import type { CustomerService } from './customers/customer.service.js';

/** CONTRACT.md: every demo password. */
export const DEMO_PASSWORD = 'Demo-Passw0rd!';

export const BANK_PERSONAS = [
  {
    username: 'ivanov',
    personal: {
      lastName: 'Иванов',
      firstName: 'Иван',
      middleName: 'Иванович',
      birthDate: '1985-04-12',
      phone: '+79990000001',
      email: 'ivanov@example.test',
    },
  },
  {
    username: 'petrova',
    personal: {
      lastName: 'Петрова',
      firstName: 'Анна',
      middleName: 'Сергеевна',
      birthDate: '1992-09-03',
      phone: '+79990000002',
      email: 'petrova@example.test',
    },
  },
  {
    username: 'operator',
    roles: ['operator' as const],
    personal: {
      lastName: 'Орлова',
      firstName: 'Мария',
      middleName: 'Викторовна',
      birthDate: '1990-06-01',
      phone: '+79990000020',
      email: 'operator@bank.example.test',
    },
  },
];

/** Creates the demo customers that do not exist yet (each checked on its own). */
export async function seedBankPersonas(customers: CustomerService): Promise<string[]> {
  const created: string[] = [];
  for (const persona of BANK_PERSONAS) {
    if (await customers.findIdByUsername(persona.username)) continue;
    await customers.create({ ...persona, password: DEMO_PASSWORD });
    created.push(persona.username);
  }
  return created;
}
