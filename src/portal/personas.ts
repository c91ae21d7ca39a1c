import {
  formatPassportSeries,
  formatSnils,
  generateInn,
  generateKpp,
  generateOgrn,
  generatePassport,
  generateSnils,
} from '../platform/ru/index.js';
import { seededRandom } from '../platform/seeded-random.js';
import type { CitizenPersonalData, CitizenRole } from './citizens/citizen.js';
import type { CitizenService, OrganizationDetails } from './citizens/citizen.service.js';
import {
  seedCitizenRecords,
  type CitizenRecordService,
} from './data-api/citizen-records.service.js';

/** CONTRACT.md: every demo password. */
export const DEMO_PASSWORD = 'Demo-Passw0rd!';

interface Persona {
  username?: string;
  roles?: CitizenRole[];
  phoneConfirmed: boolean;
  emailConfirmed: boolean;
  personal: CitizenPersonalData;
}

// Fixed seed and date: the same made-up, checksum-valid identities on every machine.
const PERSONA_DATE = new Date('2026-01-15T00:00:00Z');

function person(
  seed: number,
  p: Omit<CitizenPersonalData, 'snils' | 'inn' | 'passport'> & { issuedBy: string },
): CitizenPersonalData {
  const random = seededRandom(seed);
  const passport = generatePassport(random, PERSONA_DATE);
  const { issuedBy, ...rest } = p;
  return {
    ...rest,
    snils: formatSnils(generateSnils(random)),
    inn: generateInn('person', random),
    passport: {
      series: formatPassportSeries(passport.series),
      number: passport.number,
      issueDate: passport.issueDate,
      issuedBy,
      divisionCode: passport.divisionCode,
    },
  };
}

export const PORTAL_PERSONAS: Persona[] = [
  {
    phoneConfirmed: true,
    emailConfirmed: true,
    personal: person(1001, {
      lastName: 'Иванов',
      firstName: 'Иван',
      middleName: 'Иванович',
      birthDate: '1985-04-12',
      birthPlace: 'г. Москва',
      gender: 'M',
      phone: '+79990000001',
      email: 'ivanov@example.test',
      issuedBy: 'ГУ МВД России по г. Москве',
      addresses: {
        registration: '119019, г. Москва, ул. Арбат, д. 10, кв. 5',
        residence: '119019, г. Москва, ул. Арбат, д. 10, кв. 5',
      },
    }),
  },
  {
    phoneConfirmed: true,
    emailConfirmed: false,
    personal: person(1002, {
      lastName: 'Петрова',
      firstName: 'Анна',
      middleName: 'Сергеевна',
      birthDate: '1992-09-03',
      birthPlace: 'г. Санкт-Петербург',
      gender: 'F',
      phone: '+79990000002',
      email: 'petrova@example.test',
      issuedBy: 'ГУ МВД России по г. Санкт-Петербургу и Ленинградской области',
      addresses: { registration: '191186, г. Санкт-Петербург, Невский пр-т, д. 20, кв. 7' },
    }),
  },
  {
    username: 'security',
    roles: ['citizen', 'security'],
    phoneConfirmed: true,
    emailConfirmed: true,
    personal: person(1003, {
      lastName: 'Смирнова',
      firstName: 'Ольга',
      middleName: 'Петровна',
      birthDate: '1988-02-20',
      birthPlace: 'г. Казань',
      gender: 'F',
      phone: '+79990000010',
      email: 'security@example.test',
      issuedBy: 'МВД по Республике Татарстан',
      addresses: { registration: '420111, г. Казань, ул. Баумана, д. 3, кв. 1' },
    }),
  },
  {
    username: 'admin',
    roles: ['citizen', 'admin'],
    phoneConfirmed: true,
    emailConfirmed: true,
    personal: person(1004, {
      lastName: 'Кузнецов',
      firstName: 'Пётр',
      middleName: 'Андреевич',
      birthDate: '1979-11-30',
      birthPlace: 'г. Новосибирск',
      gender: 'M',
      phone: '+79990000011',
      email: 'admin@example.test',
      issuedBy: 'ГУ МВД России по Новосибирской области',
      addresses: { registration: '630099, г. Новосибирск, Красный пр-т, д. 5, кв. 9' },
    }),
  },
];

function romashka(): OrganizationDetails {
  const random = seededRandom(2001);
  return {
    fullName: 'Общество с ограниченной ответственностью «Ромашка»',
    shortName: 'ООО «Ромашка»',
    inn: generateInn('organization', random),
    ogrn: generateOgrn(random),
    kpp: generateKpp(random),
    address: '125009, г. Москва, ул. Тверская, д. 7, офис 12',
  };
}

/**
 * Creates the demo personas that do not exist yet. Each is checked on its own, so a
 * start interrupted half-way finishes the job next time instead of skipping it.
 */
export async function seedPortalPersonas(
  citizens: CitizenService,
  records: CitizenRecordService,
): Promise<string[]> {
  const created: string[] = [];
  for (const persona of PORTAL_PERSONAS) {
    let id = await citizens.findIdByIdentifier(persona.personal.phone);
    if (!id) {
      id = await citizens.create({ ...persona, password: DEMO_PASSWORD });
      created.push(persona.username ?? persona.personal.phone);
      if (persona.personal.lastName === 'Иванов') {
        await citizens.createOrganization(romashka(), id);
      }
    }
    // State service applications and benefit payments on file (idempotent).
    await seedCitizenRecords(records, id, persona.personal.lastName);
  }
  return created;
}
