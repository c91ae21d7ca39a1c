import { describe, expect, it } from 'vitest';
import type { Citizen, CitizenPersonalData } from './citizen.js';
import { checkReadiness, DATA_FRESHNESS_DAYS, type ReadinessProblem } from './readiness.js';

const NOW = new Date('2026-12-01T09:00:00Z');
const DAY_MS = 86_400_000;

const citizen = (overrides: Partial<Citizen> = {}): Citizen => ({
  id: 'citizen-1',
  username: 'ivanov',
  roles: ['citizen'],
  phoneConfirmed: true,
  emailConfirmed: true,
  secondFactor: 'sms',
  totpDevice: null,
  totpEnrolledAt: null,
  blocked: false,
  personalUpdatedAt: new Date('2026-06-01T09:00:00Z'),
  createdAt: new Date('2020-01-01T09:00:00Z'),
  ...overrides,
});

const personal = (overrides: Partial<CitizenPersonalData> = {}): CitizenPersonalData => ({
  lastName: 'Иванов',
  firstName: 'Иван',
  middleName: 'Иванович',
  birthDate: '1985-04-12',
  birthPlace: 'г. Москва',
  gender: 'M',
  snils: '112-233-445 95',
  inn: '500100732259',
  phone: '+79161234567',
  email: 'ivanov@example.ru',
  passport: {
    series: '4510',
    number: '123456',
    issueDate: '2015-05-20',
    issuedBy: 'ОУФМС России по г. Москве',
    divisionCode: '770-001',
  },
  addresses: { registration: 'г. Москва, ул. Тверская, д. 1, кв. 1' },
  ...overrides,
});

const CYRILLIC = /[А-Яа-яЁё]/;

function expectActionable(problem: ReadinessProblem) {
  expect(problem.text).toMatch(CYRILLIC);
  expect(problem.fix.label).toMatch(CYRILLIC);
  expect(problem.fix.href).toMatch(/^\//);
}

describe('checkReadiness', () => {
  it('finds nothing wrong with a complete, confirmed, recently updated account', () => {
    expect(checkReadiness(citizen(), personal(), NOW)).toEqual([]);
  });

  it('finds nothing wrong with a TOTP account whose contacts are confirmed', () => {
    expect(checkReadiness(citizen({ secondFactor: 'totp' }), personal(), NOW)).toEqual([]);
  });

  it.each<[ReadinessProblem['code'], Partial<Citizen>, Partial<CitizenPersonalData>, string]>([
    [
      'DATA_STALE',
      { personalUpdatedAt: new Date(NOW.getTime() - (DATA_FRESHNESS_DAYS + 1) * DAY_MS) },
      {},
      '/profile',
    ],
    // With TOTP the second factor does not depend on the phone.
    ['PHONE_UNCONFIRMED', { phoneConfirmed: false, secondFactor: 'totp' }, {}, '/profile'],
    ['EMAIL_MISSING', {}, { email: undefined }, '/profile'],
    ['EMAIL_UNCONFIRMED', { emailConfirmed: false }, {}, '/profile'],
    ['BLOCKED', { blocked: true }, {}, '/'],
  ])('reports %s alone, in Russian, with a link to fix it', (code, c, p, href) => {
    const problems = checkReadiness(citizen(c), personal(p), NOW);
    expect(problems.map((x) => x.code)).toEqual([code]);
    expectActionable(problems[0]!);
    expect(problems[0]!.fix.href).toBe(href);
  });

  it('reports a missing email, not an unconfirmed one, when there is no email at all', () => {
    const problems = checkReadiness(
      citizen({ emailConfirmed: false }),
      personal({ email: undefined }),
      NOW,
    );
    expect(problems.map((x) => x.code)).toEqual(['EMAIL_MISSING']);
    expect(problems[0]!.text).toBe('Не указана электронная почта.');
  });

  it('reports no second factor when SMS is the method and the phone is unconfirmed', () => {
    // SMS codes need a confirmed phone, so NO_SECOND_FACTOR always comes with PHONE_UNCONFIRMED.
    const problems = checkReadiness(
      citizen({ phoneConfirmed: false, secondFactor: 'sms' }),
      personal(),
      NOW,
    );
    expect(problems.map((x) => x.code)).toEqual(['PHONE_UNCONFIRMED', 'NO_SECOND_FACTOR']);
    const noSecondFactor = problems[1]!;
    expectActionable(noSecondFactor);
    expect(noSecondFactor.fix.href).toBe('/security');
  });

  it('treats data updated exactly three years (1095 days) ago as still fresh, and a moment later as stale', () => {
    const boundary = new Date(NOW.getTime() - DATA_FRESHNESS_DAYS * DAY_MS);
    expect(checkReadiness(citizen({ personalUpdatedAt: boundary }), personal(), NOW)).toEqual([]);
    const stale = new Date(boundary.getTime() - 60_000);
    expect(
      checkReadiness(citizen({ personalUpdatedAt: stale }), personal(), NOW).map((x) => x.code),
    ).toEqual(['DATA_STALE']);
  });

  it('reports every problem at once so the citizen can fix them in one visit', () => {
    const problems = checkReadiness(
      citizen({
        blocked: true,
        phoneConfirmed: false,
        emailConfirmed: false,
        personalUpdatedAt: new Date('2020-01-01T00:00:00Z'),
      }),
      personal(),
      NOW,
    );
    expect(problems.map((x) => x.code).sort()).toEqual(
      [
        'BLOCKED',
        'DATA_STALE',
        'EMAIL_UNCONFIRMED',
        'NO_SECOND_FACTOR',
        'PHONE_UNCONFIRMED',
      ].sort(),
    );
    problems.forEach(expectActionable);
  });
});
