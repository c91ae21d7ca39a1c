import { fail, ok, requireString } from './result.js';
import type { RuValidation } from './result.js';
import { randomDigits, randomInt, randomPick, randomRegion } from './random.js';
import type { RandomSource } from './random.js';

export type KppErrorCode = 'KPP_LENGTH' | 'KPP_FORMAT';

const KPP = /^\d{4}[0-9A-Z]{2}\d{3}$/;
const CYRILLIC = /[\u0400-\u04FF]/;
const LATIN = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * Validates a KPP (tax registration reason code): 4 digits (tax office),
 * 2 characters (reason: digits or Latin A–Z), 3 digits. There is no check
 * digit, so only the format is verified. Spaces are ignored and Latin letters
 * upper-cased; on success `value` is the 9 characters.
 */
export function validateKpp(value: string): RuValidation<KppErrorCode> {
  requireString(value, 'KPP');
  const kpp = value.replace(/\s/g, '').toUpperCase();
  if (kpp.length !== 9) {
    return fail(
      'KPP_LENGTH',
      'КПП должен состоять из 9 символов, например 773601001. Проверьте, что код введён полностью.',
    );
  }
  if (!KPP.test(kpp)) {
    return fail(
      'KPP_FORMAT',
      CYRILLIC.test(kpp)
        ? 'В КПП попали русские буквы. В 5-м и 6-м символах допустимы только цифры и латинские буквы A–Z: переключите раскладку и введите код заново.'
        : 'КПП записывается так: 4 цифры, затем 2 цифры или латинские буквы A–Z, затем 3 цифры, например 773601001.',
    );
  }
  return ok(kpp);
}

/**
 * A random valid KPP. The reason code is usually two digits (01–99) and
 * sometimes two Latin letters, so both branches of the format get exercised.
 */
export function generateKpp(random: RandomSource): string {
  const office = randomRegion(random) + randomDigits(random, 2);
  const reason =
    randomInt(random, 0, 9) < 8
      ? String(randomInt(random, 1, 99)).padStart(2, '0')
      : randomPick(random, [...LATIN]) + randomPick(random, [...LATIN]);
  return office + reason + randomDigits(random, 3);
}
