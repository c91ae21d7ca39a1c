/**
 * Validators and demo-data generators for Russian identifiers: INN, SNILS,
 * OGRN, OGRNIP, KPP and the internal passport.
 *
 * Validators are pure and return a `RuValidation`; generators take an injected
 * `RandomSource` so that tests can make them repeatable.
 */
export type { RuValidation } from './result.js';
export type { RandomSource } from './random.js';
export { validateInn, generateInn } from './inn.js';
export type { InnKind, InnErrorCode } from './inn.js';
export { validateSnils, formatSnils, generateSnils, SNILS_LAST_UNCHECKED_NUMBER } from './snils.js';
export type { SnilsErrorCode } from './snils.js';
export { validateOgrn, validateOgrnip, generateOgrn, generateOgrnip } from './ogrn.js';
export type { OgrnErrorCode, OgrnipErrorCode } from './ogrn.js';
export { validateKpp, generateKpp } from './kpp.js';
export type { KppErrorCode } from './kpp.js';
export {
  validatePassport,
  validatePassportSeries,
  validatePassportNumber,
  validateDivisionCode,
  validatePassportIssueDate,
  formatPassportSeries,
  generatePassport,
  FIRST_PASSPORT_ISSUE_DATE,
} from './passport.js';
export type { Passport, PassportInput, PassportErrorCode } from './passport.js';
