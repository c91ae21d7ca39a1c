import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  FIRST_PASSPORT_ISSUE_DATE,
  formatPassportSeries,
  generatePassport,
  validateDivisionCode,
  validatePassport,
  validatePassportIssueDate,
  validatePassportNumber,
  validatePassportSeries,
} from './passport.js';
import type { PassportInput } from './passport.js';
import { randomNumbers, sourceFrom } from './test-support.js';

const TODAY = new Date('2026-03-10T09:00:00Z');
const GOOD: PassportInput = {
  series: '45 06',
  number: '123456',
  divisionCode: '770-001',
  issueDate: '2010-05-12',
};
const DAY = 86_400_000;

describe('validatePassport', () => {
  it('accepts a well-formed passport and normalizes it', () => {
    expect(validatePassport(GOOD, TODAY)).toEqual({
      ok: true,
      value: { series: '4506', number: '123456', divisionCode: '770-001', issueDate: '2010-05-12' },
    });
  });

  it('accepts the series with or without the space, and the other accepted spellings', () => {
    const result = validatePassport(
      { series: '4506', number: ' 123 456 ', divisionCode: '770001', issueDate: '12.05.2010' },
      TODAY,
    );
    expect(result).toEqual(validatePassport(GOOD, TODAY));
  });

  it.each([
    [{ series: '45 0' }, 'PASSPORT_SERIES_FORMAT'],
    [{ series: '45 O6' }, 'PASSPORT_SERIES_FORMAT'],
    [{ series: '45 066' }, 'PASSPORT_SERIES_FORMAT'],
    [{ number: '12345' }, 'PASSPORT_NUMBER_FORMAT'],
    [{ number: '1234567' }, 'PASSPORT_NUMBER_FORMAT'],
    [{ number: '12345б' }, 'PASSPORT_NUMBER_FORMAT'],
    [{ divisionCode: '770-01' }, 'PASSPORT_DIVISION_CODE_FORMAT'],
    [{ divisionCode: '770/001' }, 'PASSPORT_DIVISION_CODE_FORMAT'],
    [{ issueDate: '2010-02-30' }, 'PASSPORT_ISSUE_DATE_FORMAT'],
    [{ issueDate: '31.04.2010' }, 'PASSPORT_ISSUE_DATE_FORMAT'],
    [{ issueDate: '2010/05/12' }, 'PASSPORT_ISSUE_DATE_FORMAT'],
    [{ issueDate: '12.5.2010' }, 'PASSPORT_ISSUE_DATE_FORMAT'],
    [{ issueDate: '' }, 'PASSPORT_ISSUE_DATE_FORMAT'],
    [{ issueDate: '1997-06-30' }, 'PASSPORT_ISSUE_DATE_TOO_EARLY'],
    [{ issueDate: '0099-01-01' }, 'PASSPORT_ISSUE_DATE_TOO_EARLY'],
    [{ issueDate: '2026-03-11' }, 'PASSPORT_ISSUE_DATE_FUTURE'],
  ])('rejects %j with %s', (change, code) => {
    const result = validatePassport({ ...GOOD, ...change }, TODAY);
    expect(result).toMatchObject({ ok: false, code });
    if (!result.ok) expect(result.message).toMatch(/[А-Яа-яЁё]/);
  });

  it('accepts the boundary dates 1997-07-01 and today', () => {
    expect(validatePassport({ ...GOOD, issueDate: '1997-07-01' }, TODAY).ok).toBe(true);
    expect(validatePassport({ ...GOOD, issueDate: '2026-03-10' }, TODAY).ok).toBe(true);
    expect(FIRST_PASSPORT_ISSUE_DATE).toBe('1997-07-01');
  });

  it('reports the first bad field, in the order series, number, division code, date', () => {
    const allBad = { series: 'x', number: 'x', divisionCode: 'x', issueDate: 'x' };
    expect(validatePassport(allBad, TODAY)).toMatchObject({ code: 'PASSPORT_SERIES_FORMAT' });
    expect(validatePassport({ ...allBad, series: '4506' }, TODAY)).toMatchObject({
      code: 'PASSPORT_NUMBER_FORMAT',
    });
  });

  it('throws TypeError for caller mistakes', () => {
    expect(() => validatePassport(null as unknown as PassportInput, TODAY)).toThrow(TypeError);
    expect(() => validatePassport('4506 123456' as unknown as PassportInput, TODAY)).toThrow(
      TypeError,
    );
    expect(() =>
      validatePassport({ ...GOOD, number: 123456 } as unknown as PassportInput, TODAY),
    ).toThrow(TypeError);
    expect(() => validatePassport(GOOD, '2026-03-10' as unknown as Date)).toThrow(TypeError);
    expect(() => validatePassport(GOOD, new Date('not a date'))).toThrow(TypeError);
    expect(() => validatePassport({ ...GOOD, series: 'x' }, new Date(Number.NaN))).toThrow(
      TypeError,
    );
  });
});

describe('validatePassportIssueDate: what "today" means', () => {
  it('takes today as the latest calendar date anywhere in Russia (UTC+12)', () => {
    // 12:00 UTC on 10 March is already 00:00 on 11 March in Kamchatka.
    const justBefore = new Date('2026-03-10T11:59:59Z');
    const justAfter = new Date('2026-03-10T12:00:00Z');
    expect(validatePassportIssueDate('2026-03-11', justBefore)).toMatchObject({
      code: 'PASSPORT_ISSUE_DATE_FUTURE',
    });
    expect(validatePassportIssueDate('2026-03-11', justAfter)).toEqual({
      ok: true,
      value: '2026-03-11',
    });
    expect(validatePassportIssueDate('2026-03-12', justAfter)).toMatchObject({
      code: 'PASSPORT_ISSUE_DATE_FUTURE',
    });
  });

  it('accepts a date d exactly when 1997-07-01 ≤ d ≤ today (in UTC+12)', () => {
    const first = Date.UTC(1997, 6, 1) / DAY;
    fc.assert(
      fc.property(
        fc.integer({ min: first - 400, max: first + 12_000 }),
        fc.integer({ min: first - 400, max: first + 12_000 }),
        fc.integer({ min: 0, max: DAY - 1 }),
        (issueDay, todayDay, msIntoDay) => {
          const today = new Date(todayDay * DAY + msIntoDay);
          const latestDay = Math.floor((today.getTime() + 12 * 3_600_000) / DAY);
          const iso = new Date(issueDay * DAY).toISOString().slice(0, 10);
          const result = validatePassportIssueDate(iso, today);
          if (issueDay < first)
            expect(result).toMatchObject({ code: 'PASSPORT_ISSUE_DATE_TOO_EARLY' });
          else if (issueDay > latestDay)
            expect(result).toMatchObject({ code: 'PASSPORT_ISSUE_DATE_FUTURE' });
          else expect(result).toEqual({ ok: true, value: iso });
        },
      ),
    );
  });

  it('reads ДД.ММ.ГГГГ and ISO as the same date', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1997-07-01'), max: new Date('2026-03-10'), noInvalidDate: true }),
        (d) => {
          const iso = d.toISOString().slice(0, 10);
          const [y, m, day] = iso.split('-');
          expect(validatePassportIssueDate(`${day}.${m}.${y}`, TODAY)).toEqual({
            ok: true,
            value: iso,
          });
        },
      ),
    );
  });
});

describe('field validators and formatting', () => {
  it('normalize each field', () => {
    expect(validatePassportSeries(' 45 06 ')).toEqual({ ok: true, value: '4506' });
    expect(validatePassportNumber('123456')).toEqual({ ok: true, value: '123456' });
    expect(validateDivisionCode('770 001')).toEqual({ ok: true, value: '770-001' });
  });

  it('formatPassportSeries inserts the space and rejects anything but 4 digits', () => {
    expect(formatPassportSeries('4506')).toBe('45 06');
    expect(formatPassportSeries('45 06')).toBe('45 06');
    expect(() => formatPassportSeries('450')).toThrow(RangeError);
  });
});

describe('generatePassport', () => {
  it('always generates a passport that validates, issued on or before today', () => {
    fc.assert(
      fc.property(
        randomNumbers,
        fc.date({
          min: new Date('1997-07-01T00:00:00Z'),
          max: new Date('2100-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        (numbers, today) => {
          const passport = generatePassport(sourceFrom(numbers), today);
          expect(validatePassport(passport, today)).toEqual({ ok: true, value: passport });
          expect(passport.series.slice(2)).toBe(passport.issueDate.slice(2, 4));
        },
      ),
    );
  });

  it('reaches both ends of the date range', () => {
    expect(generatePassport(() => 0, TODAY).issueDate).toBe('1997-07-01');
    expect(generatePassport(() => 1 - Number.EPSILON / 2, TODAY).issueDate).toBe('2026-03-10');
  });

  it('refuses a today before any passport could have been issued', () => {
    expect(() => generatePassport(() => 0.5, new Date('1997-06-30T00:00:00Z'))).toThrow(RangeError);
    expect(() => generatePassport(() => 0.5, new Date(Number.NaN))).toThrow(TypeError);
  });
});
