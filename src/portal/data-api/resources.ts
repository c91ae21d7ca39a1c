import { ForbiddenError } from '../../platform/http/errors.js';
import type { CitizenPersonalData } from '../citizens/citizen.js';
import type { CitizenOrder, CitizenPayment } from './citizen-record.js';
import { esiaDate } from './formats.js';
import { SCOPES, type CitizenScope, type DataResource } from './scope-catalog.js';

/**
 * The citizen data API's representations (`GET /rs/prns/{oid}` and its sub-resources),
 * built from the citizen's decrypted data and the scopes the consent grants. Pure: the
 * routes check the token and the consent, load the data and call these.
 *
 * The filtering rule, for every resource: a field is present only when a granted scope
 * opens it (scope-catalog.ts). A field outside the consent is absent, never null, so a
 * partner cannot tell "not shared" from "not on file" by probing.
 */
export type { DataResource } from './scope-catalog.js';

/** ESIA's list envelope. */
export interface EsiaList<T> {
  stateFacts: ['hasSize'];
  size: number;
  elements: T[];
}

export interface PersonJson {
  oid: string;
  trusted: true;
  lastName?: string;
  firstName?: string;
  middleName?: string;
  /** DD.MM.YYYY */
  birthDate?: string;
  gender?: 'M' | 'F';
  /** `123-456-789 01` */
  snils?: string;
  inn?: string;
}

export interface DocumentJson {
  type: 'RF_PASSPORT';
  /** Four digits, no space: `4508`. */
  series: string;
  number: string;
  /** DD.MM.YYYY */
  issueDate: string;
  issuedBy: string;
  /** Division code, `123-456`. */
  issueId: string;
}

export interface AddressJson {
  /** PRG: registration (регистрация), PLV: residence (проживание). */
  type: 'PRG' | 'PLV';
  addressStr: string;
  zipCode?: string;
}

export interface ContactJson {
  /** MBT: mobile phone, EML: e-mail. */
  type: 'MBT' | 'EML';
  value: string;
  vrfStu: 'VERIFIED' | 'NOT_VERIFIED';
}

export type OrderJson = CitizenOrder;
export type PaymentJson = CitizenPayment;

/** Each resource's JSON representation. */
export interface ResourceJsonMap {
  person: PersonJson;
  docs: EsiaList<DocumentJson>;
  addrs: EsiaList<AddressJson>;
  ctts: EsiaList<ContactJson>;
  orders: EsiaList<OrderJson>;
  payments: EsiaList<PaymentJson>;
}

export interface ResourceInput {
  /** The subject identifier this partner knows the citizen by (pairwise `sub`). */
  oid: string;
  personal: CitizenPersonalData;
  orders: readonly CitizenOrder[];
  payments: readonly CitizenPayment[];
  /** The scopes the consent grants; unknown strings are ignored. */
  grantedScopes: ReadonlySet<string>;
  /** Whether the phone and e-mail are confirmed (Citizen.phoneConfirmed/emailConfirmed). */
  confirmed?: { phone: boolean; email: boolean } | undefined;
}

/** A resource asked for without the scope that opens it: 403, problem+json. */
export class ScopeNotGrantedError extends ForbiddenError {
  constructor(
    readonly resource: DataResource,
    readonly scope: CitizenScope,
  ) {
    super(
      `The consent does not cover the scope ${scope} needed for ${resource}.`,
      'Согласие гражданина не распространяется на эти данные.',
      'SCOPE_NOT_GRANTED',
    );
  }
}

const REQUIRED_SCOPE: Readonly<Record<DataResource, CitizenScope>> = {
  // The person resource always carries the subject; its other fields are filtered.
  person: 'openid',
  docs: 'id_doc',
  addrs: 'addresses',
  ctts: 'contacts',
  orders: 'orders',
  payments: 'payments_egisso',
};

/** The scope without which the resource is refused. */
export function requiredScopeFor(resource: DataResource): CitizenScope {
  const scope = REQUIRED_SCOPE[resource];
  if (!scope) throw new TypeError(`unknown data resource: ${String(resource)}`);
  return scope;
}

/**
 * The field names the resource returns under these scopes (of each element, for lists):
 * what the audit log records as read. Names only, never values. Empty when the resource
 * would be refused.
 */
export function fieldsReturned(
  resource: DataResource,
  grantedScopes: ReadonlySet<string>,
): string[] {
  if (!grantedScopes.has(requiredScopeFor(resource))) return [];
  const fields: string[] = [];
  for (const definition of SCOPES) {
    if (!grantedScopes.has(definition.scope)) continue;
    for (const opened of definition.opens) {
      if (opened.resource === resource) fields.push(...opened.fields);
    }
  }
  return [...new Set(fields)];
}

function assertGranted(resource: DataResource, input: ResourceInput): readonly string[] {
  const scope = requiredScopeFor(resource);
  if (!input.grantedScopes.has(scope)) throw new ScopeNotGrantedError(resource, scope);
  return fieldsReturned(resource, input.grantedScopes);
}

/**
 * Keeps the allowed fields that have a value, in the catalog's order; the catalog is the
 * only filter, so anything else a record carries stays behind.
 */
function pick<T extends object>(candidate: T, allowed: readonly string[]): T {
  const source = candidate as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of allowed) {
    if (Object.hasOwn(source, key) && source[key] !== undefined) out[key] = source[key];
  }
  return out as T;
}

function list<T extends object>(elements: readonly T[], allowed: readonly string[]): EsiaList<T> {
  const picked = elements.map((e) => pick(e, allowed));
  return { stateFacts: ['hasSize'], size: picked.length, elements: picked };
}

const digits = (value: string) => value.replace(/\D/g, '');

function esiaSnils(snils: string): string {
  const d = digits(snils);
  return d.length === 11
    ? `${d.slice(0, 3)}-${d.slice(3, 6)}-${d.slice(6, 9)} ${d.slice(9)}`
    : snils;
}

/** `+79991234567` → `+7(999)1234567`, as ESIA writes mobile numbers. */
function esiaPhone(phone: string): string {
  const m = /^\+7(\d{3})(\d{7})$/.exec(phone);
  return m ? `+7(${m[1]})${m[2]}` : phone;
}

/** `119019, г. Москва, …` → zip code and the rest, the way ESIA keeps them apart. */
function esiaAddress(type: AddressJson['type'], address: string): AddressJson {
  const m = /^\s*(\d{6})\s*,\s*(.+)$/s.exec(address);
  return m ? { type, addressStr: m[2]!, zipCode: m[1]! } : { type, addressStr: address };
}

/** `GET /rs/prns/{oid}`. */
export function person(input: ResourceInput): PersonJson {
  const allowed = assertGranted('person', input);
  const p = input.personal;
  const candidate: PersonJson = {
    oid: input.oid,
    trusted: true,
    lastName: p.lastName,
    firstName: p.firstName,
    middleName: p.middleName,
    birthDate: esiaDate(p.birthDate),
    gender: p.gender,
    snils: esiaSnils(p.snils),
    inn: digits(p.inn),
  };
  return pick(candidate, allowed);
}

/** `GET /rs/prns/{oid}/docs`: the passport. */
export function documents(input: ResourceInput): EsiaList<DocumentJson> {
  const allowed = assertGranted('docs', input);
  const p = input.personal.passport;
  return list<DocumentJson>(
    [
      {
        type: 'RF_PASSPORT',
        series: digits(p.series),
        number: digits(p.number),
        issueDate: esiaDate(p.issueDate),
        issuedBy: p.issuedBy,
        issueId: p.divisionCode,
      },
    ],
    allowed,
  );
}

/** `GET /rs/prns/{oid}/addrs`: registration (PRG) and, when on file, residence (PLV). */
export function addresses(input: ResourceInput): EsiaList<AddressJson> {
  const allowed = assertGranted('addrs', input);
  const a = input.personal.addresses;
  const elements = [esiaAddress('PRG', a.registration)];
  if (a.residence) elements.push(esiaAddress('PLV', a.residence));
  return list(elements, allowed);
}

/** `GET /rs/prns/{oid}/ctts`: mobile phone and e-mail with their confirmation status. */
export function contacts(input: ResourceInput): EsiaList<ContactJson> {
  const allowed = assertGranted('ctts', input);
  const p = input.personal;
  const status = (ok: boolean | undefined): ContactJson['vrfStu'] =>
    ok ? 'VERIFIED' : 'NOT_VERIFIED';
  const elements: ContactJson[] = [
    { type: 'MBT', value: esiaPhone(p.phone), vrfStu: status(input.confirmed?.phone) },
  ];
  if (p.email) {
    elements.push({ type: 'EML', value: p.email, vrfStu: status(input.confirmed?.email) });
  }
  return list(elements, allowed);
}

/** `GET /rs/prns/{oid}/orders`: applications for state services and their status. */
export function orders(input: ResourceInput): EsiaList<OrderJson> {
  const allowed = assertGranted('orders', input);
  return list(input.orders, allowed);
}

/** `GET /rs/prns/{oid}/payments`: benefits, subsidies and compensations from ЕГИССО. */
export function payments(input: ResourceInput): EsiaList<PaymentJson> {
  const allowed = assertGranted('payments', input);
  return list(input.payments, allowed);
}

const BUILDERS: { [R in DataResource]: (input: ResourceInput) => ResourceJsonMap[R] } = {
  person,
  docs: documents,
  addrs: addresses,
  ctts: contacts,
  orders,
  payments,
};

/** Any resource by name; throws ScopeNotGrantedError when the consent does not cover it. */
export function resourceJson<R extends DataResource>(
  resource: R,
  input: ResourceInput,
): ResourceJsonMap[R] {
  const build = BUILDERS[resource];
  if (!build) throw new TypeError(`unknown data resource: ${String(resource)}`);
  return build(input);
}
