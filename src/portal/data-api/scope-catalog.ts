import { fullName, type CitizenPersonalData } from '../citizens/citizen.js';
import { amountToKopecks, type CitizenRecords } from './citizen-record.js';
import { esiaDate, formatRubles, plural } from './formats.js';
import { maskEmail, maskInn, maskPassport, maskPhone, maskSnils } from './masking.js';

/**
 * PRODUCT.md, "Data the portal can share": the catalog of scopes as data. Nothing outside
 * it is shared. Scope names follow ESIA so that integrators feel at home; each scope says
 * what the citizen is asked about (label), which ID token / userinfo claims it releases,
 * and which data API resources and fields it opens.
 */

/** The data API resources, by their path under `/rs/prns/{oid}`. */
export const DATA_RESOURCES = ['person', 'docs', 'addrs', 'ctts', 'orders', 'payments'] as const;
export type DataResource = (typeof DATA_RESOURCES)[number];

export const CITIZEN_SCOPES = [
  'openid',
  'fullname',
  'birthdate',
  'gender',
  'snils',
  'inn',
  'id_doc',
  'addresses',
  'contacts',
  'orders',
  'payments_egisso',
] as const;
export const ORGANIZATION_SCOPES = [
  'org_fullname',
  'org_inn',
  'org_ogrn',
  'org_kpp',
  'org_egrul',
  'org_officials',
] as const;

export type CitizenScope = (typeof CITIZEN_SCOPES)[number];
export type OrganizationScope = (typeof ORGANIZATION_SCOPES)[number];
export type Scope = CitizenScope | OrganizationScope;

export interface ScopeDefinition {
  scope: Scope;
  /** Whose data: the citizen's own, or an organization the citizen represents. */
  subject: 'citizen' | 'organization';
  /** What the consent screen asks about, in Russian. */
  label: string;
  /** OIDC claims released in the ID token and at userinfo. */
  claims: readonly string[];
  /** Data API resources and the fields of each that the scope opens. */
  opens: readonly { resource: DataResource; fields: readonly string[] }[];
}

const PERSON_ALWAYS = ['oid', 'trusted'] as const;

/** In the order the consent screen lists them. */
export const SCOPES: readonly ScopeDefinition[] = deepFreeze([
  {
    scope: 'openid',
    subject: 'citizen',
    label: 'Идентификатор учётной записи',
    claims: ['sub'],
    opens: [{ resource: 'person', fields: PERSON_ALWAYS }],
  },
  {
    scope: 'fullname',
    subject: 'citizen',
    label: 'Фамилия, имя, отчество',
    claims: ['family_name', 'given_name', 'middle_name', 'name'],
    opens: [{ resource: 'person', fields: ['lastName', 'firstName', 'middleName'] }],
  },
  {
    scope: 'birthdate',
    subject: 'citizen',
    label: 'Дата рождения',
    claims: ['birthdate'],
    opens: [{ resource: 'person', fields: ['birthDate'] }],
  },
  {
    scope: 'gender',
    subject: 'citizen',
    label: 'Пол',
    claims: ['gender'],
    opens: [{ resource: 'person', fields: ['gender'] }],
  },
  {
    scope: 'snils',
    subject: 'citizen',
    label: 'СНИЛС',
    claims: ['snils'],
    opens: [{ resource: 'person', fields: ['snils'] }],
  },
  {
    scope: 'inn',
    subject: 'citizen',
    label: 'ИНН',
    claims: ['inn'],
    opens: [{ resource: 'person', fields: ['inn'] }],
  },
  {
    scope: 'id_doc',
    subject: 'citizen',
    label: 'Паспорт гражданина РФ',
    claims: ['id_doc'],
    opens: [
      {
        resource: 'docs',
        fields: ['type', 'series', 'number', 'issueDate', 'issuedBy', 'issueId'],
      },
    ],
  },
  {
    scope: 'addresses',
    subject: 'citizen',
    label: 'Адреса регистрации и проживания',
    claims: ['addresses'],
    opens: [{ resource: 'addrs', fields: ['type', 'addressStr', 'zipCode'] }],
  },
  {
    scope: 'contacts',
    subject: 'citizen',
    label: 'Мобильный телефон и электронная почта',
    claims: ['phone_number', 'phone_number_verified', 'email', 'email_verified'],
    opens: [{ resource: 'ctts', fields: ['type', 'value', 'vrfStu'] }],
  },
  {
    scope: 'orders',
    subject: 'citizen',
    label: 'Заявления на госуслуги и их статусы',
    claims: [],
    opens: [
      {
        resource: 'orders',
        fields: [
          'number',
          'serviceName',
          'status',
          'statusText',
          'submittedAt',
          'updatedAt',
          'certificateNumber',
        ],
      },
    ],
  },
  {
    scope: 'payments_egisso',
    subject: 'citizen',
    label: 'Выплаты, льготы и компенсации (ЕГИССО)',
    claims: [],
    opens: [
      {
        resource: 'payments',
        fields: ['id', 'kind', 'name', 'amount', 'currency', 'paidAt', 'payer'],
      },
    ],
  },
  // Organization data comes from the organization's own records, not from ID token
  // claims or the citizen data API; these scopes are listed so consents can name them.
  {
    scope: 'org_fullname',
    subject: 'organization',
    label: 'Полное и сокращённое наименование организации',
    claims: [],
    opens: [],
  },
  { scope: 'org_inn', subject: 'organization', label: 'ИНН организации', claims: [], opens: [] },
  { scope: 'org_ogrn', subject: 'organization', label: 'ОГРН организации', claims: [], opens: [] },
  { scope: 'org_kpp', subject: 'organization', label: 'КПП организации', claims: [], opens: [] },
  {
    scope: 'org_egrul',
    subject: 'organization',
    label: 'Выписка из ЕГРЮЛ',
    claims: [],
    opens: [],
  },
  {
    scope: 'org_officials',
    subject: 'organization',
    label: 'Руководитель и представители организации',
    claims: [],
    opens: [],
  },
] satisfies ScopeDefinition[]);

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const BY_SCOPE = new Map<string, ScopeDefinition>(SCOPES.map((d) => [d.scope, d]));

export function isKnownScope(value: unknown): value is Scope {
  return typeof value === 'string' && BY_SCOPE.has(value);
}

/** The catalog entry; TypeError for a scope outside the catalog (a caller mistake). */
export function scopeDefinition(scope: Scope): ScopeDefinition {
  const definition = BY_SCOPE.get(scope);
  if (!definition) throw new TypeError(`unknown scope: ${String(scope)}`);
  return definition;
}

/** The Russian label the consent screen shows for the scope. */
export function scopeLabel(scope: Scope): string {
  return scopeDefinition(scope).label;
}

/**
 * Scope → claims, in the shape of oidc-provider's `claims` configuration. A fresh object
 * each call, so a caller that adds to it does not change the catalog.
 */
export function claimsByScope(): Record<Scope, string[]> {
  return Object.fromEntries(SCOPES.map((d) => [d.scope, [...d.claims]])) as Record<Scope, string[]>;
}

export interface ScopePreviewLine {
  label: string;
  value: string;
}

/** Optional facts for the preview that are not part of the personal data record. */
export interface PreviewContext extends Partial<CitizenRecords> {
  /** Whether the phone and e-mail are confirmed; unconfirmed ones are marked. */
  confirmed?: { phone: boolean; email: boolean } | undefined;
}

/**
 * The values a scope would release, as the consent screen shows them before anything
 * leaves: identifiers partly hidden (SNILS, INN, passport, phone, e-mail), everything
 * else in full, orders and payments summarised. Empty for organization scopes, whose
 * data is not the citizen's record.
 */
export function previewForScope(
  scope: Scope,
  personal: CitizenPersonalData,
  records: PreviewContext = {},
): ScopePreviewLine[] {
  const line = (label: string, value: string): ScopePreviewLine => ({ label, value });
  switch (scope) {
    case 'openid':
      return [line('Идентификатор', 'Свой для каждой организации, без персональных данных')];
    case 'fullname':
      return [line('Фамилия, имя, отчество', fullName(personal))];
    case 'birthdate':
      return [line('Дата рождения', esiaDate(personal.birthDate))];
    case 'gender':
      return [line('Пол', personal.gender === 'M' ? 'Мужской' : 'Женский')];
    case 'snils':
      return [line('СНИЛС', maskSnils(personal.snils))];
    case 'inn':
      return [line('ИНН', maskInn(personal.inn))];
    case 'id_doc': {
      const p = personal.passport;
      return [
        line('Серия и номер', maskPassport(p.series, p.number)),
        line('Дата выдачи', esiaDate(p.issueDate)),
        line('Кем выдан', p.issuedBy),
        line('Код подразделения', p.divisionCode),
      ];
    }
    case 'addresses': {
      const lines = [line('Адрес регистрации', personal.addresses.registration)];
      if (personal.addresses.residence) {
        lines.push(line('Адрес проживания', personal.addresses.residence));
      }
      return lines;
    }
    case 'contacts': {
      const { confirmed } = records;
      const lines = [
        line(
          'Мобильный телефон',
          maskPhone(personal.phone) + (confirmed?.phone === false ? ' (не подтверждён)' : ''),
        ),
      ];
      if (personal.email) {
        lines.push(
          line(
            'Электронная почта',
            maskEmail(personal.email) + (confirmed?.email === false ? ' (не подтверждена)' : ''),
          ),
        );
      }
      return lines;
    }
    case 'orders':
      return previewOrders(records.orders ?? []);
    case 'payments_egisso':
      return previewPayments(records.payments ?? []);
    default:
      if (scopeDefinition(scope).subject === 'organization') return [];
      throw new TypeError(`no preview for scope ${String(scope)}`);
  }
}

function previewOrders(orders: NonNullable<PreviewContext['orders']>): ScopePreviewLine[] {
  if (orders.length === 0) return [{ label: 'Заявления', value: 'Нет заявлений' }];
  const latest = orders.reduce((a, b) =>
    Date.parse(b.updatedAt) > Date.parse(a.updatedAt) ? b : a,
  );
  return [
    {
      label: 'Заявления',
      value: `${orders.length} ${plural(orders.length, ['заявление', 'заявления', 'заявлений'])}`,
    },
    {
      label: 'Последнее изменение',
      value: `«${latest.serviceName}»: ${latest.statusText}`,
    },
  ];
}

function previewPayments(payments: NonNullable<PreviewContext['payments']>): ScopePreviewLine[] {
  if (payments.length === 0) return [{ label: 'Выплаты', value: 'Нет выплат' }];
  const total = payments.reduce((sum, p) => sum + amountToKopecks(p.amount), 0n);
  const count = `${payments.length} ${plural(payments.length, ['выплата', 'выплаты', 'выплат'])}`;
  return [{ label: 'Выплаты', value: `${count} на сумму ${formatRubles(total)}` }];
}
