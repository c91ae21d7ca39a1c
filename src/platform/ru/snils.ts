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
import { randomInt } from './random.js';
import type { RandomSource } from './random.js';

export type SnilsErrorCode = 'SNILS_FORMAT' | 'SNILS_LENGTH' | 'SNILS_CHECKSUM';

const WEIGHTS = [9, 8, 7, 6, 5, 4, 3, 2, 1] as const;

/**
 * Numbers up to and including 001-001-998 were issued before the check number
 * was introduced: for them it is not defined and is not checked.
 */
export const SNILS_LAST_UNCHECKED_NUMBER = 1_001_998;

/** The two-digit check number for a 9-digit SNILS body. */
function checkNumber(body: string): string {
  const sum = weightedSum(digitsOf(body), WEIGHTS);
  let control: number;
  if (sum < 100) control = sum;
  else if (sum === 100 || sum === 101) control = 0;
  else {
    control = sum % 101;
    if (control === 100) control = 0;
  }
  return String(control).padStart(2, '0');
}

/**
 * Validates a SNILS (pension insurance number), written `123-456-789 01` or as
 * 11 bare digits (any spaces and dashes are ignored). On success `value` is
 * the 11 bare digits; show it to people with `formatSnils`.
 *
 * The check number is verified only for numbers above 001-001-998, the range
 * for which it is defined; older numbers pass with any check number.
 */
export function validateSnils(value: string): RuValidation<SnilsErrorCode> {
  requireString(value, 'SNILS');
  const snils = stripSeparators(value);
  if (!isDigits(snils)) {
    return fail(
      'SNILS_FORMAT',
      'СНИЛС может содержать только цифры, пробелы и дефисы, например 123-456-789 01.',
    );
  }
  if (snils.length !== 11) {
    return fail(
      'SNILS_LENGTH',
      'СНИЛС должен состоять из 11 цифр, например 123-456-789 01. Проверьте, что номер введён полностью.',
    );
  }
  const body = snils.slice(0, 9);
  if (Number(body) > SNILS_LAST_UNCHECKED_NUMBER && checkNumber(body) !== snils.slice(9)) {
    return fail(
      'SNILS_CHECKSUM',
      'В СНИЛС допущена ошибка: контрольное число (две последние цифры) не сходится. Сверьте номер с документом.',
    );
  }
  return ok(snils);
}

/**
 * Formats 11 SNILS digits as `123-456-789 01`. Accepts any input whose digits,
 * once spaces and dashes are removed, number exactly 11; does not verify the
 * check number (use `validateSnils` for that).
 */
export function formatSnils(value: string): string {
  requireString(value, 'SNILS');
  const s = stripSeparators(value);
  if (s.length !== 11 || !isDigits(s)) {
    throw new RangeError('formatSnils needs exactly 11 digits');
  }
  return `${s.slice(0, 3)}-${s.slice(3, 6)}-${s.slice(6, 9)} ${s.slice(9)}`;
}

/**
 * A random valid SNILS (11 bare digits), always above 001-001-998 so that its
 * check number is meaningful.
 */
export function generateSnils(random: RandomSource): string {
  const body = String(randomInt(random, SNILS_LAST_UNCHECKED_NUMBER + 1, 999_999_999)).padStart(
    9,
    '0',
  );
  return body + checkNumber(body);
}
