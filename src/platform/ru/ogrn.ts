import { decimalMod, fail, isDigits, ok, requireString, stripSeparators } from './result.js';
import type { RuValidation } from './result.js';
import { randomDigits, randomInt, randomPick } from './random.js';
import type { RandomSource } from './random.js';

export type OgrnErrorCode = 'OGRN_FORMAT' | 'OGRN_LENGTH' | 'OGRN_CHECKSUM';
export type OgrnipErrorCode = 'OGRNIP_FORMAT' | 'OGRNIP_LENGTH' | 'OGRNIP_CHECKSUM';

/** (first 12 digits as a number mod 11) mod 10. */
function ogrnControl(body: string): string {
  return String(decimalMod(body, 11) % 10);
}

/** (first 14 digits as a number mod 13) mod 10. */
function ogrnipControl(body: string): string {
  return String(decimalMod(body, 13) % 10);
}

/**
 * Validates an OGRN (primary state registration number of an organization,
 * 13 digits). Spaces and dashes are ignored. On success `value` is the bare
 * digits.
 */
export function validateOgrn(value: string): RuValidation<OgrnErrorCode> {
  requireString(value, 'OGRN');
  const ogrn = stripSeparators(value);
  if (!isDigits(ogrn)) {
    return fail(
      'OGRN_FORMAT',
      'ОГРН может содержать только цифры. Уберите буквы и другие символы.',
    );
  }
  if (ogrn.length !== 13) {
    return fail(
      'OGRN_LENGTH',
      ogrn.length === 15
        ? 'ОГРН организации состоит из 13 цифр. Номер из 15 цифр — это ОГРНИП индивидуального предпринимателя: введите его в поле для ОГРНИП.'
        : 'ОГРН должен состоять из 13 цифр. Проверьте, что номер введён полностью.',
    );
  }
  if (ogrnControl(ogrn.slice(0, 12)) !== ogrn.slice(12)) {
    return fail(
      'OGRN_CHECKSUM',
      'В ОГРН допущена ошибка: контрольная цифра не сходится. Сверьте номер с выпиской из ЕГРЮЛ.',
    );
  }
  return ok(ogrn);
}

/**
 * Validates an OGRNIP (primary state registration number of an individual
 * entrepreneur, 15 digits). Spaces and dashes are ignored. On success `value`
 * is the bare digits.
 */
export function validateOgrnip(value: string): RuValidation<OgrnipErrorCode> {
  requireString(value, 'OGRNIP');
  const ogrnip = stripSeparators(value);
  if (!isDigits(ogrnip)) {
    return fail(
      'OGRNIP_FORMAT',
      'ОГРНИП может содержать только цифры. Уберите буквы и другие символы.',
    );
  }
  if (ogrnip.length !== 15) {
    return fail(
      'OGRNIP_LENGTH',
      ogrnip.length === 13
        ? 'ОГРНИП индивидуального предпринимателя состоит из 15 цифр. Номер из 13 цифр — это ОГРН организации: введите его в поле для ОГРН.'
        : 'ОГРНИП должен состоять из 15 цифр. Проверьте, что номер введён полностью.',
    );
  }
  if (ogrnipControl(ogrnip.slice(0, 14)) !== ogrnip.slice(14)) {
    return fail(
      'OGRNIP_CHECKSUM',
      'В ОГРНИП допущена ошибка: контрольная цифра не сходится. Сверьте номер с выпиской из ЕГРИП.',
    );
  }
  return ok(ogrnip);
}

/** Two-digit year + two-digit region, as in digits 2–5 of a real number. */
function yearAndRegion(random: RandomSource): string {
  return (
    String(randomInt(random, 2, 25)).padStart(2, '0') +
    String(randomInt(random, 1, 99)).padStart(2, '0')
  );
}

/** A random valid OGRN (13 digits) starting with 1 or 5, as real ones do. */
export function generateOgrn(random: RandomSource): string {
  const body = randomPick(random, ['1', '5']) + yearAndRegion(random) + randomDigits(random, 7);
  return body + ogrnControl(body);
}

/** A random valid OGRNIP (15 digits) starting with 3, as real ones do. */
export function generateOgrnip(random: RandomSource): string {
  const body = '3' + yearAndRegion(random) + randomDigits(random, 9);
  return body + ogrnipControl(body);
}
