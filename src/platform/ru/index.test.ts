import { describe, expect, expectTypeOf, it } from 'vitest';
import * as ru from './index.js';
import type { InnErrorCode, RuValidation } from './index.js';

describe('public API', () => {
  it('exports every validator, generator and formatter', () => {
    expect(Object.keys(ru).sort()).toEqual(
      [
        'FIRST_PASSPORT_ISSUE_DATE',
        'SNILS_LAST_UNCHECKED_NUMBER',
        'formatPassportSeries',
        'formatSnils',
        'generateInn',
        'generateKpp',
        'generateOgrn',
        'generateOgrnip',
        'generatePassport',
        'generateSnils',
        'validateDivisionCode',
        'validateInn',
        'validateKpp',
        'validateOgrn',
        'validateOgrnip',
        'validatePassport',
        'validatePassportIssueDate',
        'validatePassportNumber',
        'validatePassportSeries',
        'validateSnils',
      ].sort(),
    );
  });

  it('returns a discriminated RuValidation that narrows on ok', () => {
    const result = ru.validateInn('7707083893');
    expectTypeOf(result).toEqualTypeOf<RuValidation<InnErrorCode>>();
    if (result.ok) {
      expectTypeOf(result.value).toBeString();
      expect(result.value).toBe('7707083893');
    } else {
      expectTypeOf(result.code).toEqualTypeOf<InnErrorCode>();
      throw new Error(result.message);
    }
  });
});
