import { fail, isDigits, ok, requireString, stripSeparators } from './result.js';
import type { RuValidation } from './result.js';
import { randomDigits, randomInt, randomRegion } from './random.js';
import type { RandomSource } from './random.js';

export type PassportErrorCode =
  | 'PASSPORT_SERIES_FORMAT'
  | 'PASSPORT_NUMBER_FORMAT'
  | 'PASSPORT_DIVISION_CODE_FORMAT'
  | 'PASSPORT_ISSUE_DATE_FORMAT'
  | 'PASSPORT_ISSUE_DATE_FUTURE'
  | 'PASSPORT_ISSUE_DATE_TOO_EARLY';

/** The passport fields as a person typed them. */
export interface PassportInput {
  /** 4 digits, `45 06` or `4506`. */
  readonly series: string;
  /** 6 digits. */
  readonly number: string;
  /** `123-456` or `123456`. */
  readonly divisionCode: string;
  /** `ГГГГ-ММ-ДД` (ISO) or `ДД.ММ.ГГГГ`. */
  readonly issueDate: string;
}

/** A validated passport in normalized form. */
export interface Passport {
  /** 4 digits without the space, e.g. `4506`; show it with `formatPassportSeries`. */
  readonly series: string;
  /** 6 digits. */
  readonly number: string;
  /** `123-456`. */
  readonly divisionCode: string;
  /** ISO date `YYYY-MM-DD`. */
  readonly issueDate: string;
}

const MS_PER_DAY = 86_400_000;

/** Passports of the current type have been issued since 1 July 1997. */
export const FIRST_PASSPORT_ISSUE_DATE = '1997-07-01';

/** Whole days since 1970-01-01 for a calendar date, or undefined if there is no such date. */
function epochDay(year: number, month: number, day: number): number | undefined {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day) {
    return undefined;
  }
  return d.getTime() / MS_PER_DAY;
}

function isoDate(epochDays: number): string {
  return new Date(epochDays * MS_PER_DAY).toISOString().slice(0, 10);
}

const FIRST_ISSUE_DAY = epochDay(1997, 7, 1) as number;

/**
 * The calendar date "today" may already be somewhere in Russia: the date in
 * UTC+12 (Kamchatka, Chukotka), the easternmost zone. Using it means that a
 * passport issued this morning in Petropavlovsk-Kamchatsky is not rejected as
 * issued in the future because the server's clock is still on yesterday.
 */
function latestRussianDay(today: Date): number {
  if (!(today instanceof Date) || Number.isNaN(today.getTime())) {
    throw new TypeError('today must be a valid Date');
  }
  return Math.floor((today.getTime() + 12 * 3_600_000) / MS_PER_DAY);
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const RU_DATE = /^(\d{2})\.(\d{2})\.(\d{4})$/;

function parseDate(value: string): number | undefined {
  const iso = ISO_DATE.exec(value);
  if (iso) return epochDay(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  const ru = RU_DATE.exec(value);
  if (ru) return epochDay(Number(ru[3]), Number(ru[2]), Number(ru[1]));
  return undefined;
}

/** Validates a passport series: 4 digits, with or without the space (`45 06`). */
export function validatePassportSeries(value: string): RuValidation<'PASSPORT_SERIES_FORMAT'> {
  requireString(value, 'passport series');
  const series = stripSeparators(value);
  if (series.length !== 4 || !isDigits(series)) {
    return fail(
      'PASSPORT_SERIES_FORMAT',
      'Серия паспорта — это 4 цифры, например 45 06. Проверьте, что серия введена полностью.',
    );
  }
  return ok(series);
}

/** Validates a passport number: 6 digits. */
export function validatePassportNumber(value: string): RuValidation<'PASSPORT_NUMBER_FORMAT'> {
  requireString(value, 'passport number');
  const number = stripSeparators(value);
  if (number.length !== 6 || !isDigits(number)) {
    return fail(
      'PASSPORT_NUMBER_FORMAT',
      'Номер паспорта — это 6 цифр, например 123456. Проверьте, что номер введён полностью.',
    );
  }
  return ok(number);
}

/** Validates a division code: 6 digits, `123-456` or `123456`; normalized to `123-456`. */
export function validateDivisionCode(value: string): RuValidation<'PASSPORT_DIVISION_CODE_FORMAT'> {
  requireString(value, 'division code');
  const code = stripSeparators(value);
  if (code.length !== 6 || !isDigits(code)) {
    return fail(
      'PASSPORT_DIVISION_CODE_FORMAT',
      'Код подразделения — это 6 цифр в виде 123-456. Он напечатан в паспорте рядом с датой выдачи.',
    );
  }
  return ok(`${code.slice(0, 3)}-${code.slice(3)}`);
}

/**
 * Validates a passport issue date, `ГГГГ-ММ-ДД` or `ДД.ММ.ГГГГ`: a real
 * calendar date, not before 1997-07-01 and not after `today` (taken as the
 * latest date anywhere in Russia, see above). Normalized to ISO `YYYY-MM-DD`.
 */
export function validatePassportIssueDate(
  value: string,
  today: Date,
): RuValidation<
  'PASSPORT_ISSUE_DATE_FORMAT' | 'PASSPORT_ISSUE_DATE_FUTURE' | 'PASSPORT_ISSUE_DATE_TOO_EARLY'
> {
  requireString(value, 'passport issue date');
  const latest = latestRussianDay(today);
  const day = parseDate(value.trim());
  if (day === undefined) {
    return fail(
      'PASSPORT_ISSUE_DATE_FORMAT',
      'Укажите дату выдачи паспорта в виде ДД.ММ.ГГГГ, например 12.05.2010, и проверьте, что такая дата существует.',
    );
  }
  if (day < FIRST_ISSUE_DAY) {
    return fail(
      'PASSPORT_ISSUE_DATE_TOO_EARLY',
      'Паспорта такого образца выдаются с 1 июля 1997 года. Проверьте дату выдачи.',
    );
  }
  if (day > latest) {
    return fail(
      'PASSPORT_ISSUE_DATE_FUTURE',
      'Дата выдачи паспорта не может быть позже сегодняшнего дня. Проверьте дату выдачи.',
    );
  }
  return ok(isoDate(day));
}

/**
 * Validates a Russian internal passport. Fields are checked in the order
 * series, number, division code, issue date; the first problem is reported
 * (its code names the field). `today` is passed in rather than read from the
 * clock so that the result depends only on the arguments.
 */
export function validatePassport(
  input: PassportInput,
  today: Date,
): RuValidation<PassportErrorCode, Passport> {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError('passport must be an object with series, number, divisionCode, issueDate');
  }
  latestRussianDay(today); // a bad `today` is a caller mistake even if a field is also wrong
  const series = validatePassportSeries(input.series);
  if (!series.ok) return series;
  const number = validatePassportNumber(input.number);
  if (!number.ok) return number;
  const divisionCode = validateDivisionCode(input.divisionCode);
  if (!divisionCode.ok) return divisionCode;
  const issueDate = validatePassportIssueDate(input.issueDate, today);
  if (!issueDate.ok) return issueDate;
  return ok({
    series: series.value,
    number: number.value,
    divisionCode: divisionCode.value,
    issueDate: issueDate.value,
  });
}

/** `4506` → `45 06`, the way the series is printed. Needs exactly 4 digits. */
export function formatPassportSeries(series: string): string {
  const result = validatePassportSeries(series);
  if (!result.ok) throw new RangeError('formatPassportSeries needs exactly 4 digits');
  return `${result.value.slice(0, 2)} ${result.value.slice(2)}`;
}

/**
 * A random valid passport issued between 1997-07-01 and `today`. Like real
 * ones, the series is a region code followed by the two-digit issue year.
 */
export function generatePassport(random: RandomSource, today: Date): Passport {
  const latest = latestRussianDay(today);
  if (latest < FIRST_ISSUE_DAY) {
    throw new RangeError('no passport can have been issued before 1997-07-01');
  }
  const issueDate = isoDate(randomInt(random, FIRST_ISSUE_DAY, latest));
  const region = randomRegion(random);
  return {
    series: region + issueDate.slice(2, 4),
    number: randomDigits(random, 6),
    divisionCode: `${region}${randomInt(random, 0, 3)}-${randomDigits(random, 3)}`,
    issueDate,
  };
}
