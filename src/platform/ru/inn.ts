import {
  digitsOf,
  fail,
  isDigits,
  ok,
  requireString,
  stripSeparators,
  weightedSum,
} from './result.js';
import type { RuValidation } from './result.js';
import { randomDigits, randomRegion } from './random.js';
import type { RandomSource } from './random.js';

/** Who an INN belongs to: a person (12 digits, individual entrepreneurs included) or an organization (10 digits). */
export type InnKind = 'person' | 'organization';

export type InnErrorCode = 'INN_FORMAT' | 'INN_LENGTH' | 'INN_CHECKSUM';

const ORGANIZATION_WEIGHTS = [2, 4, 10, 3, 5, 9, 4, 6, 8] as const;
const PERSON_WEIGHTS_11 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8] as const;
const PERSON_WEIGHTS_12 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8] as const;

const LENGTH_BY_KIND: Record<InnKind, number> = { organization: 10, person: 12 };

const LENGTH_MESSAGE: Record<InnKind | 'any', string> = {
  any: 'ИНН должен состоять из 10 цифр (у организации) или из 12 цифр (у физического лица и ИП). Проверьте, что номер введён полностью.',
  organization:
    'ИНН организации должен состоять из 10 цифр. Проверьте, что номер введён полностью.',
  person: 'ИНН физического лица должен состоять из 12 цифр. Проверьте, что номер введён полностью.',
};

/** (Σ weights · digits mod 11) mod 10: the INN control digit. */
function controlDigit(digits: readonly number[], weights: readonly number[]): number {
  return (weightedSum(digits, weights) % 11) % 10;
}

/** The control digits that belong after `body` (9 digits → 1, 10 digits → 2). */
function controlDigitsFor(body: string): string {
  const digits = digitsOf(body);
  if (digits.length === 9) return String(controlDigit(digits, ORGANIZATION_WEIGHTS));
  const first = controlDigit(digits, PERSON_WEIGHTS_11);
  const second = controlDigit([...digits, first], PERSON_WEIGHTS_12);
  return `${first}${second}`;
}

/**
 * Validates an INN (taxpayer number). Without `kind` both the 10-digit
 * organization and the 12-digit person form are accepted; with it, only that
 * one. Spaces and dashes are ignored. On success `value` is the bare digits.
 */
export function validateInn(value: string, kind?: InnKind): RuValidation<InnErrorCode> {
  requireString(value, 'INN');
  if (kind !== undefined && kind !== 'person' && kind !== 'organization') {
    throw new TypeError(`INN kind must be 'person' or 'organization', got ${String(kind)}`);
  }
  const inn = stripSeparators(value);
  if (!isDigits(inn)) {
    return fail('INN_FORMAT', 'ИНН может содержать только цифры. Уберите буквы и другие символы.');
  }
  const allowed = kind === undefined ? [10, 12] : [LENGTH_BY_KIND[kind]];
  if (!allowed.includes(inn.length)) return fail('INN_LENGTH', LENGTH_MESSAGE[kind ?? 'any']);

  const bodyLength = inn.length === 10 ? 9 : 10;
  if (controlDigitsFor(inn.slice(0, bodyLength)) !== inn.slice(bodyLength)) {
    return fail(
      'INN_CHECKSUM',
      'В ИНН допущена ошибка: контрольная цифра не сходится. Сверьте номер с документом.',
    );
  }
  return ok(inn);
}

/**
 * A random valid INN of the given kind, for demo data and tests. The first two
 * digits (the region) are 01–99.
 */
export function generateInn(kind: InnKind, random: RandomSource): string {
  if (kind !== 'person' && kind !== 'organization') {
    throw new TypeError(`INN kind must be 'person' or 'organization', got ${String(kind)}`);
  }
  const body = randomRegion(random) + randomDigits(random, LENGTH_BY_KIND[kind] === 10 ? 7 : 8);
  return body + controlDigitsFor(body);
}
