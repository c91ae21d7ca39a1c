import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSnils } from '../../platform/ru/index.js';
import { PORTAL_PERSONAS } from '../personas.js';
import { demoRecordsFor } from './citizen-records.service.js';
import { maskEmail, maskInn, maskPassport, maskPhone, maskSnils } from './masking.js';
import {
  CITIZEN_SCOPES,
  ORGANIZATION_SCOPES,
  SCOPES,
  claimsByScope,
  isKnownScope,
  previewForScope,
  scopeLabel,
  type Scope,
} from './scope-catalog.js';

const IVANOV = PORTAL_PERSONAS[0]!.personal;
const PETROVA = PORTAL_PERSONAS[1]!.personal;

describe('scope catalog', () => {
  it('lists every scope of PRODUCT.md, organization scopes marked as such', () => {
    expect(SCOPES.map((s) => s.scope)).toEqual([...CITIZEN_SCOPES, ...ORGANIZATION_SCOPES]);
    expect(SCOPES.filter((s) => s.subject === 'organization').map((s) => s.scope)).toEqual([
      'org_fullname',
      'org_inn',
      'org_ogrn',
      'org_kpp',
      'org_egrul',
      'org_officials',
    ]);
    for (const s of SCOPES) expect(s.label, s.scope).toMatch(/[А-Яа-яЁё]/);
    expect(new Set(SCOPES.map((s) => s.label)).size).toBe(SCOPES.length);
  });

  it('labels scopes in Russian for the consent screen', () => {
    expect(scopeLabel('fullname')).toBe('Фамилия, имя, отчество');
    expect(scopeLabel('id_doc')).toBe('Паспорт гражданина РФ');
    expect(scopeLabel('addresses')).toBe('Адреса регистрации и проживания');
    expect(scopeLabel('contacts')).toBe('Мобильный телефон и электронная почта');
    expect(scopeLabel('orders')).toBe('Заявления на госуслуги и их статусы');
    expect(scopeLabel('payments_egisso')).toBe('Выплаты, льготы и компенсации (ЕГИССО)');
    expect(() => scopeLabel('email' as Scope)).toThrow(TypeError);
  });

  it('knows its scopes and nothing else', () => {
    for (const s of SCOPES) expect(isKnownScope(s.scope)).toBe(true);
    for (const other of ['email', 'profile', 'FULLNAME', '', '__proto__', 'toString', 42]) {
      expect(isKnownScope(other), String(other)).toBe(false);
    }
  });

  it('gives oidc-provider the claims of each scope', () => {
    const claims = claimsByScope();
    expect(Object.keys(claims).sort()).toEqual(SCOPES.map((s) => s.scope).sort());
    expect(claims).toMatchObject({
      openid: ['sub'],
      fullname: ['family_name', 'given_name', 'middle_name', 'name'],
      birthdate: ['birthdate'],
      gender: ['gender'],
      snils: ['snils'],
      inn: ['inn'],
      id_doc: ['id_doc'],
      addresses: ['addresses'],
      contacts: ['phone_number', 'phone_number_verified', 'email', 'email_verified'],
    });
    // A claim belongs to one scope, so no scope releases another scope's data.
    const all = Object.values(claims).flat();
    expect(new Set(all).size).toBe(all.length);
    // A fresh copy: whoever configures the provider cannot widen the catalog.
    claims.fullname.push('snils');
    expect(claimsByScope().fullname).not.toContain('snils');
    expect(() => (SCOPES[1]!.claims as string[]).push('snils')).toThrow(TypeError);
  });
});

describe('masking', () => {
  it('hides all but the recognisable end of identifiers', () => {
    expect(maskSnils('112-233-445 95')).toBe('***-***-*** 95');
    expect(maskSnils('11223344595')).toBe('***-***-*** 95');
    expect(maskInn('500100732259')).toBe('********2259');
    expect(maskInn('7707083893')).toBe('******3893');
    expect(maskPassport('45 08', '123456')).toBe('45 ** ****56');
    expect(maskPhone('+79990000001')).toBe('+7 999 ***-**-01');
    expect(maskPhone('+7 (912) 345-67-89')).toBe('+7 912 ***-**-89');
    expect(maskEmail('ivanov@example.test')).toBe('iv***@example.test');
    expect(maskEmail('a@example.test')).toBe('a***@example.test');
    expect(maskEmail('not an address')).toBe('***');
  });

  it('never shows a whole identifier', () => {
    const digits = (n: number) =>
      fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });
    fc.assert(
      fc.property(
        digits(11),
        digits(12),
        digits(4),
        digits(6),
        digits(10),
        (snils, inn, series, number, phone) => {
          const shown = [
            maskSnils(formatSnils(snils)),
            maskInn(inn),
            maskPassport(series, number),
            maskPhone(`+7${phone}`),
          ].map((m) => m.replace(/\D/g, ''));
          expect(shown[0]).toBe(snils.slice(-2));
          expect(shown[1]).toBe(inn.slice(-4));
          expect(shown[2]).toBe(series.slice(0, 2) + number.slice(-2));
          expect(shown[3]).toBe(`7${phone.slice(0, 3)}${phone.slice(-2)}`);
        },
      ),
    );
  });
});

describe('consent preview', () => {
  const records = demoRecordsFor('Иванов');
  const preview = (scope: Scope, personal = IVANOV, context = {}) =>
    previewForScope(scope, personal, { ...records, ...context });
  const text = (scope: Scope, personal = IVANOV, context = {}) =>
    preview(scope, personal, context)
      .map((l) => `${l.label}: ${l.value}`)
      .join('\n');

  it('shows names, dates and addresses in full', () => {
    expect(preview('fullname')).toEqual([
      { label: 'Фамилия, имя, отчество', value: 'Иванов Иван Иванович' },
    ]);
    expect(preview('birthdate')).toEqual([{ label: 'Дата рождения', value: '12.04.1985' }]);
    expect(preview('gender')).toEqual([{ label: 'Пол', value: 'Мужской' }]);
    expect(preview('gender', PETROVA)).toEqual([{ label: 'Пол', value: 'Женский' }]);
    expect(preview('addresses')).toEqual([
      { label: 'Адрес регистрации', value: IVANOV.addresses.registration },
      { label: 'Адрес проживания', value: IVANOV.addresses.residence },
    ]);
    expect(preview('addresses', PETROVA)).toHaveLength(1);
  });

  it('masks SNILS, INN, passport, phone and e-mail', () => {
    const p = IVANOV.passport;
    expect(preview('snils')).toEqual([
      { label: 'СНИЛС', value: `***-***-*** ${IVANOV.snils.slice(-2)}` },
    ]);
    expect(preview('inn')).toEqual([{ label: 'ИНН', value: `********${IVANOV.inn.slice(-4)}` }]);
    expect(preview('id_doc')).toEqual([
      {
        label: 'Серия и номер',
        value: `${p.series.slice(0, 2)} ** ****${p.number.slice(-2)}`,
      },
      { label: 'Дата выдачи', value: p.issueDate.split('-').reverse().join('.') },
      { label: 'Кем выдан', value: p.issuedBy },
      { label: 'Код подразделения', value: p.divisionCode },
    ]);
    expect(preview('contacts')).toEqual([
      { label: 'Мобильный телефон', value: '+7 999 ***-**-01' },
      { label: 'Электронная почта', value: 'iv***@example.test' },
    ]);
    const all = SCOPES.map((s) => text(s.scope)).join('\n');
    for (const secret of [
      IVANOV.snils,
      IVANOV.snils.replace(/\D/g, ''),
      IVANOV.inn,
      p.number,
      p.series,
      IVANOV.phone,
      IVANOV.phone.slice(2),
      IVANOV.email!,
      'ivanov',
    ]) {
      expect(all, secret).not.toContain(secret);
    }
  });

  it('marks contacts that are not confirmed', () => {
    expect(text('contacts', PETROVA, { confirmed: { phone: true, email: false } })).toBe(
      'Мобильный телефон: +7 999 ***-**-02\nЭлектронная почта: pe***@example.test (не подтверждена)',
    );
  });

  it('summarises orders by count and the latest status', () => {
    expect(preview('orders')).toEqual([
      { label: 'Заявления', value: '3 заявления' },
      {
        label: 'Последнее изменение',
        value: '«Получение справки о наличии (отсутствии) судимости»: В обработке',
      },
    ]);
    const petrova = demoRecordsFor('Петрова');
    expect(text('orders', PETROVA, petrova)).toBe(
      'Заявления: 1 заявление\nПоследнее изменение: «Оформление заграничного паспорта нового образца»: Заявление отправлено',
    );
    expect(text('orders', PETROVA, { orders: [] })).toBe('Заявления: Нет заявлений');
    const many = Array.from({ length: 11 }, () => records.orders[0]!);
    expect(text('orders', IVANOV, { orders: many })).toContain('11 заявлений');
  });

  it('summarises payments by count and total', () => {
    expect(preview('payments_egisso')).toEqual([
      { label: 'Выплаты', value: '2 выплаты на сумму 25\u00a0268,21\u00a0₽' },
    ]);
    const one = [{ ...records.payments[0]!, amount: '0.10' }];
    expect(text('payments_egisso', IVANOV, { payments: one })).toBe(
      'Выплаты: 1 выплата на сумму 0,10\u00a0₽',
    );
    const big = Array.from({ length: 5 }, () => ({
      ...records.payments[0]!,
      amount: '333333333.34',
    }));
    expect(text('payments_egisso', IVANOV, { payments: big })).toBe(
      'Выплаты: 5 выплат на сумму 1\u00a0666\u00a0666\u00a0666,70\u00a0₽',
    );
    expect(text('payments_egisso', IVANOV, { payments: [] })).toBe('Выплаты: Нет выплат');
  });

  it('has a preview for every citizen scope and none for organization scopes', () => {
    for (const scope of CITIZEN_SCOPES) expect(preview(scope).length, scope).toBeGreaterThan(0);
    for (const scope of ORGANIZATION_SCOPES) expect(preview(scope)).toEqual([]);
  });
});
