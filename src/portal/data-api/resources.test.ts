import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PORTAL_PERSONAS } from '../personas.js';
import { demoRecordsFor } from './citizen-records.service.js';
import {
  ScopeNotGrantedError,
  addresses,
  contacts,
  documents,
  fieldsReturned,
  orders,
  payments,
  person,
  requiredScopeFor,
  resourceJson,
  type ResourceInput,
} from './resources.js';
import { CITIZEN_SCOPES, DATA_RESOURCES, SCOPES, type CitizenScope } from './scope-catalog.js';

const IVANOV = PORTAL_PERSONAS[0]!.personal;
const PETROVA = PORTAL_PERSONAS[1]!.personal;
const RECORDS = demoRecordsFor('Иванов');

function input(scopes: Iterable<string>, over: Partial<ResourceInput> = {}): ResourceInput {
  return {
    oid: 'pairwise-sub-1',
    personal: IVANOV,
    ...RECORDS,
    grantedScopes: new Set(scopes),
    confirmed: { phone: true, email: true },
    ...over,
  };
}

const ALL = CITIZEN_SCOPES;

/** Values only a scope may reveal: none may appear in any response without it. */
const SECRETS: Partial<Record<CitizenScope, string[]>> = {
  fullname: [IVANOV.lastName, IVANOV.firstName, IVANOV.middleName!],
  birthdate: ['12.04.1985', '1985'],
  snils: [IVANOV.snils, IVANOV.snils.replace(/\D/g, '')],
  inn: [IVANOV.inn],
  id_doc: [IVANOV.passport.number, IVANOV.passport.issuedBy, IVANOV.passport.divisionCode],
  addresses: ['Арбат', '119019'],
  contacts: [IVANOV.email!, '0000001'],
  orders: RECORDS.orders.flatMap((o) => [o.number, o.serviceName]),
  payments_egisso: RECORDS.payments.flatMap((p) => [p.id, p.name, p.amount]),
};

function grantedResponses(granted: Set<string>): unknown[] {
  return DATA_RESOURCES.filter((r) => granted.has(requiredScopeFor(r))).map((r) =>
    resourceJson(r, input(granted)),
  );
}

describe('person', () => {
  it('with openid alone is the subject and nothing else', () => {
    expect(person(input(['openid']))).toEqual({ oid: 'pairwise-sub-1', trusted: true });
  });

  it('gives each field only under its scope, in ESIA formats', () => {
    expect(person(input(ALL))).toEqual({
      oid: 'pairwise-sub-1',
      trusted: true,
      lastName: 'Иванов',
      firstName: 'Иван',
      middleName: 'Иванович',
      birthDate: '12.04.1985',
      gender: 'M',
      snils: IVANOV.snils,
      inn: IVANOV.inn,
    });
    const named = person(input(['openid', 'fullname', 'gender']));
    expect(Object.keys(named).sort()).toEqual(
      ['oid', 'trusted', 'lastName', 'firstName', 'middleName', 'gender'].sort(),
    );
    expect('snils' in named).toBe(false);
    expect('birthDate' in named).toBe(false);
  });

  it('leaves out a middle name that is not on file rather than sending null', () => {
    const json = person(input(ALL, { personal: { ...IVANOV, middleName: undefined } }));
    expect('middleName' in json).toBe(false);
    expect(JSON.stringify(json)).not.toContain('null');
  });

  it('never carries a field or value outside the consent', () => {
    fc.assert(
      fc.property(fc.subarray([...ALL]), (picked) => {
        const granted = new Set<string>(['openid', ...picked]);
        const json = person(input(granted));
        expect(Object.keys(json).sort()).toEqual(fieldsReturned('person', granted).sort());
        const everything = JSON.stringify(grantedResponses(granted));
        for (const [scope, secrets] of Object.entries(SECRETS)) {
          if (granted.has(scope)) continue;
          for (const secret of secrets)
            expect(everything, `${scope}: ${secret}`).not.toContain(secret);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('lists', () => {
  it('documents: the passport in the ESIA envelope', () => {
    expect(documents(input(['openid', 'id_doc']))).toEqual({
      stateFacts: ['hasSize'],
      size: 1,
      elements: [
        {
          type: 'RF_PASSPORT',
          series: IVANOV.passport.series.replace(' ', ''),
          number: IVANOV.passport.number,
          issueDate: IVANOV.passport.issueDate.split('-').reverse().join('.'),
          issuedBy: IVANOV.passport.issuedBy,
          issueId: IVANOV.passport.divisionCode,
        },
      ],
    });
  });

  it('addresses: registration and residence, the zip code apart', () => {
    expect(addresses(input(['openid', 'addresses'])).elements).toEqual([
      { type: 'PRG', addressStr: 'г. Москва, ул. Арбат, д. 10, кв. 5', zipCode: '119019' },
      { type: 'PLV', addressStr: 'г. Москва, ул. Арбат, д. 10, кв. 5', zipCode: '119019' },
    ]);
    const petrova = addresses(input(['openid', 'addresses'], { personal: PETROVA }));
    expect(petrova.size).toBe(1);
    expect(petrova.elements[0]!.type).toBe('PRG');
    const noZip = addresses(
      input(['openid', 'addresses'], {
        personal: { ...IVANOV, addresses: { registration: 'г. Москва, ул. Арбат, д. 1' } },
      }),
    );
    expect(noZip.elements).toEqual([{ type: 'PRG', addressStr: 'г. Москва, ул. Арбат, д. 1' }]);
  });

  it('contacts: mobile as ESIA writes it, and whether each is confirmed', () => {
    expect(contacts(input(['openid', 'contacts'])).elements).toEqual([
      { type: 'MBT', value: '+7(999)0000001', vrfStu: 'VERIFIED' },
      { type: 'EML', value: 'ivanov@example.test', vrfStu: 'VERIFIED' },
    ]);
    const petrova = contacts(
      input(['openid', 'contacts'], {
        personal: PETROVA,
        confirmed: { phone: true, email: false },
      }),
    );
    expect(petrova.elements.map((c) => c.vrfStu)).toEqual(['VERIFIED', 'NOT_VERIFIED']);
    // Nobody said they were confirmed: the API does not claim it.
    const unknown = contacts(input(['openid', 'contacts'], { confirmed: undefined }));
    expect(unknown.elements.map((c) => c.vrfStu)).toEqual(['NOT_VERIFIED', 'NOT_VERIFIED']);
  });

  it('orders and payments as on file', () => {
    const o = orders(input(['openid', 'orders']));
    expect(o.size).toBe(3);
    expect(o.elements).toEqual(RECORDS.orders);
    expect(o.elements.find((e) => e.status === 'DONE')?.certificateNumber).toBeTruthy();
    expect(payments(input(['openid', 'payments_egisso']))).toEqual({
      stateFacts: ['hasSize'],
      size: 2,
      elements: RECORDS.payments,
    });
    const none = payments(input(['openid', 'payments_egisso'], { payments: [] }));
    expect(none).toEqual({ stateFacts: ['hasSize'], size: 0, elements: [] });
  });

  it('drops anything on a record that the catalog does not name', () => {
    const smuggled = { ...RECORDS.orders[0]!, internalNote: 'проверить по базе МВД' };
    const o = orders(input(['openid', 'orders'], { orders: [smuggled] }));
    expect(o.elements[0]).not.toHaveProperty('internalNote');
  });
});

describe('consent checks', () => {
  it('refuses a resource whose scope is not granted', () => {
    const cases = [
      [documents, 'id_doc'],
      [addresses, 'addresses'],
      [contacts, 'contacts'],
      [orders, 'orders'],
      [payments, 'payments_egisso'],
      [person, 'openid'],
    ] as const;
    for (const [build, scope] of cases) {
      const others = ALL.filter((s) => s !== scope);
      const err = (() => {
        try {
          build(input(others));
        } catch (e) {
          return e;
        }
      })();
      expect(err, scope).toBeInstanceOf(ScopeNotGrantedError);
      expect(err).toMatchObject({ status: 403, code: 'SCOPE_NOT_GRANTED', scope });
    }
  });

  it('names the scope each resource needs', () => {
    expect(Object.fromEntries(DATA_RESOURCES.map((r) => [r, requiredScopeFor(r)]))).toEqual({
      person: 'openid',
      docs: 'id_doc',
      addrs: 'addresses',
      ctts: 'contacts',
      orders: 'orders',
      payments: 'payments_egisso',
    });
  });

  it('lists the fields read for the audit log, names only', () => {
    expect(fieldsReturned('person', new Set(['openid', 'snils']))).toEqual([
      'oid',
      'trusted',
      'snils',
    ]);
    expect(fieldsReturned('docs', new Set(['openid']))).toEqual([]);
    expect(fieldsReturned('ctts', new Set(['openid', 'contacts']))).toEqual([
      'type',
      'value',
      'vrfStu',
    ]);
    const granted = new Set<string>(ALL);
    for (const resource of DATA_RESOURCES) {
      const json = JSON.stringify(resourceJson(resource, input(granted)));
      const fields = fieldsReturned(resource, granted);
      // Every field returned is named, and names are not values.
      const keys = new Set<string>();
      JSON.parse(json, (key: string, value: unknown) => {
        if (key && !/^\d+$/.test(key)) keys.add(key);
        return value;
      });
      for (const key of keys) {
        if (!['stateFacts', 'size', 'elements'].includes(key)) {
          expect(fields, `${resource}.${key}`).toContain(key);
        }
      }
      for (const field of fields) {
        expect(Object.values(SECRETS).flat()).not.toContain(field);
      }
    }
  });

  it('opens each resource only through a scope of the catalog', () => {
    for (const resource of DATA_RESOURCES) {
      const scope = requiredScopeFor(resource);
      expect(
        SCOPES.find((s) => s.scope === scope)!.opens.some((o) => o.resource === resource),
        resource,
      ).toBe(true);
    }
  });
});
