import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatSnils, generateSnils, SNILS_LAST_UNCHECKED_NUMBER, validateSnils } from './snils.js';
import { randomNumbers, singleDigitChanges, sourceFrom, withDigit } from './test-support.js';

const body = (snils: string) => Number(snils.slice(0, 9));

describe('validateSnils: known values, check numbers computed here by hand', () => {
  it('accepts 112-233-445 95 (sum below 100: the check number is the sum)', () => {
    // weights 9..1 over 1,1,2,2,3,3,4,4,5
    const sum = 9 * 1 + 8 * 1 + 7 * 2 + 6 * 2 + 5 * 3 + 4 * 3 + 3 * 4 + 2 * 4 + 1 * 5;
    expect(sum).toBe(95);
    expect(validateSnils('112-233-445 95')).toEqual({ ok: true, value: '11223344595' });
    expect(validateSnils('11223344595')).toEqual({ ok: true, value: '11223344595' });
  });

  it('accepts sum 100 and sum 101 with check number 00', () => {
    // 920-000-003: 9·9 + 8·2 + 1·3 = 100;  920-000-004: 9·9 + 8·2 + 1·4 = 101
    expect(validateSnils('920-000-003 00').ok).toBe(true);
    expect(validateSnils('920-000-004 00').ok).toBe(true);
    expect(validateSnils('920-000-003 100')).toMatchObject({ ok: false, code: 'SNILS_LENGTH' });
    expect(validateSnils('920-000-004 01')).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
  });

  it('accepts sums above 101 with check number sum mod 101', () => {
    // 999-999-999: 9·45 = 405 = 4·101 + 1 → 01
    expect(validateSnils('999-999-999 01').ok).toBe(true);
    // 920-000-005: 81 + 16 + 5 = 102 = 101 + 1 → 01
    expect(validateSnils('920-000-005 01').ok).toBe(true);
    expect(validateSnils('920-000-005 02')).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
  });

  it('maps sum mod 101 = 100 to 00', () => {
    // 996-000-006: 9·9 + 8·9 + 7·6 + 1·6 = 201 = 101 + 100 → 00
    expect(9 * 9 + 8 * 9 + 7 * 6 + 1 * 6).toBe(201);
    expect(validateSnils('996-000-006 00').ok).toBe(true);
    expect(validateSnils('996-000-006 99')).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
    // neighbours: 990-000-039: 81 + 72 + 2·3 + 1·9 = 168 = 101 + 67 → 67;
    // 999-990-000: 9·(9+8+7+6+5) = 315 = 3·101 + 12 → 12
    expect(validateSnils('990-000-039 67').ok).toBe(true);
    expect(validateSnils('999-990-000 12').ok).toBe(true);
  });

  it('checks numbers from 001-001-999 on and not below', () => {
    // 001-001-999: 7·1 + 4·1 + 3·9 + 2·9 + 1·9 = 65
    expect(validateSnils('001-001-999 65').ok).toBe(true);
    expect(validateSnils('001-001-999 64')).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
    // 001-001-998 and below were issued before the check number existed
    expect(SNILS_LAST_UNCHECKED_NUMBER).toBe(1_001_998);
    expect(validateSnils('001-001-998 00').ok).toBe(true);
    expect(validateSnils('001-001-998 77').ok).toBe(true);
  });

  it('normalizes any spacing and dashes to 11 bare digits', () => {
    expect(validateSnils(' 112 233 445 95 ')).toEqual({ ok: true, value: '11223344595' });
    expect(validateSnils('112-233-445-95')).toEqual({ ok: true, value: '11223344595' });
  });
});

describe('validateSnils: known-invalid values', () => {
  it.each([[''], ['112-233-445 9'], ['112-233-445 950'], ['1122334459']])(
    'rejects %j with SNILS_LENGTH',
    (value) => {
      expect(validateSnils(value)).toMatchObject({ ok: false, code: 'SNILS_LENGTH' });
    },
  );

  it.each([['112-233-445 9O'], ['112_233_445 95'], ['112.233.445 95'], ['СНИЛС 11223344595']])(
    'rejects %j with SNILS_FORMAT',
    (value) => {
      expect(validateSnils(value)).toMatchObject({ ok: false, code: 'SNILS_FORMAT' });
    },
  );

  it.each([['112-233-445 96'], ['112-233-445 59'], ['112-233-446 95'], ['212-233-445 95']])(
    'rejects %j (one digit changed) with SNILS_CHECKSUM',
    (value) => {
      const result = validateSnils(value);
      expect(result).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
      if (!result.ok) expect(result.message).toContain('контрольное число');
    },
  );

  it('throws TypeError for a non-string', () => {
    expect(() => validateSnils(11223344595 as unknown as string)).toThrow(TypeError);
    expect(() => validateSnils(null as unknown as string)).toThrow(TypeError);
  });
});

describe('validateSnils agrees with the published rule on arbitrary digit strings', () => {
  // The rule restated from the published description, independently of snils.ts.
  const checkNumber = (body: string) => {
    const sum = [...body].reduce((acc, c, i) => acc + (9 - i) * Number(c), 0);
    if (sum < 100) return sum;
    if (sum === 100 || sum === 101) return 0;
    const r = sum % 101;
    return r === 100 ? 0 : r;
  };
  const digits = (n: number) =>
    fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: n, maxLength: n });

  it('above 001-001-998: valid exactly when the check number matches', () => {
    fc.assert(
      fc.property(
        digits(9).filter((b) => Number(b) > SNILS_LAST_UNCHECKED_NUMBER),
        fc.boolean(),
        fc.integer({ min: 0, max: 99 }),
        (b, useRight, other) => {
          const check = useRight ? checkNumber(b) : other;
          const snils = b + String(check).padStart(2, '0');
          expect(validateSnils(snils).ok).toBe(check === checkNumber(b));
        },
      ),
    );
  });
});

describe('formatSnils', () => {
  it('formats bare digits and re-formats formatted ones', () => {
    expect(formatSnils('11223344595')).toBe('112-233-445 95');
    expect(formatSnils('112 233 445 95')).toBe('112-233-445 95');
  });

  it('throws for anything but 11 digits', () => {
    expect(() => formatSnils('1122334459')).toThrow(RangeError);
    expect(() => formatSnils('1122334459a')).toThrow(RangeError);
    expect(() => formatSnils(1 as unknown as string)).toThrow(TypeError);
  });

  it('round-trips: formatting a valid SNILS gives one that validates to the same value', () => {
    fc.assert(
      fc.property(randomNumbers, (numbers) => {
        const snils = generateSnils(sourceFrom(numbers));
        const formatted = formatSnils(snils);
        expect(formatted).toMatch(/^\d{3}-\d{3}-\d{3} \d{2}$/);
        expect(validateSnils(formatted)).toEqual({ ok: true, value: snils });
      }),
    );
  });
});

describe('generateSnils and the checksum properties', () => {
  const snilsArb = randomNumbers.map((numbers) => generateSnils(sourceFrom(numbers)));

  it('always generates a valid SNILS above 001-001-998', () => {
    fc.assert(
      fc.property(snilsArb, (snils) => {
        expect(snils).toMatch(/^\d{11}$/);
        expect(body(snils)).toBeGreaterThan(SNILS_LAST_UNCHECKED_NUMBER);
        expect(validateSnils(snils)).toEqual({ ok: true, value: snils });
      }),
    );
    for (const r of [0, 1 - Number.EPSILON / 2]) {
      const snils = generateSnils(() => r);
      expect(body(snils)).toBeGreaterThan(SNILS_LAST_UNCHECKED_NUMBER);
      expect(validateSnils(snils).ok).toBe(true);
    }
  });

  // The check number is (S mod 101) mod 100. A change of body digit i moves S by w·δ with
  // 1 ≤ w ≤ 9, 0 < |δ| ≤ 9, so 0 < |w·δ| ≤ 81 < 101 and S mod 101 always changes. It goes
  // unnoticed only if S mod 101 moves between 0 and 100 (both → 00), i.e. w·δ = ±1: the
  // ninth digit (weight 1) changed by exactly one. The precise properties follow.
  it('changing either check digit always fails', () => {
    fc.assert(
      fc.property(
        snilsArb,
        fc.constantFrom(9, 10),
        fc.integer({ min: 1, max: 9 }),
        (snils, i, step) => {
          const changed = withDigit(snils, i, (Number(snils[i]) + step) % 10);
          expect(validateSnils(changed)).toMatchObject({ ok: false, code: 'SNILS_CHECKSUM' });
        },
      ),
    );
  });

  it('changing any of the first eight digits fails while the number stays above 001-001-998', () => {
    fc.assert(
      fc.property(snilsArb, (snils) => {
        for (const { index, changed } of singleDigitChanges(snils)) {
          if (index >= 8 || body(changed) <= SNILS_LAST_UNCHECKED_NUMBER) continue;
          expect(validateSnils(changed).ok, changed).toBe(false);
        }
      }),
    );
  });

  it('with a check number other than 00, every single-digit change fails (above 001-001-998)', () => {
    fc.assert(
      fc.property(
        snilsArb.filter((s) => !s.endsWith('00')),
        (snils) => {
          for (const { changed } of singleDigitChanges(snils)) {
            if (body(changed) <= SNILS_LAST_UNCHECKED_NUMBER) continue;
            expect(validateSnils(changed).ok, changed).toBe(false);
          }
        },
      ),
    );
  });

  it('the exception exists: the ninth digit ±1 between sums 100 and 101 goes unnoticed', () => {
    // 112-233-458: 9+8+14+12+15+12+12+10+8 = 100 → 00;  112-233-459: sum 101 → 00
    expect(validateSnils('112-233-458 00').ok).toBe(true);
    expect(validateSnils('112-233-459 00').ok).toBe(true);
  });
});
