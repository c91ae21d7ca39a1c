import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateInn, validateInn } from './inn.js';
import { randomNumbers, singleDigitChanges, sourceFrom, withDigit } from './test-support.js';

describe('validateInn: known values', () => {
  it('accepts 7707083893, an organization INN, whose control digit is computed here by hand', () => {
    // weights 2,4,10,3,5,9,4,6,8 over 7,7,0,7,0,8,3,8,9
    const sum = 2 * 7 + 4 * 7 + 10 * 0 + 3 * 7 + 5 * 0 + 9 * 8 + 4 * 3 + 6 * 8 + 8 * 9;
    expect(sum).toBe(267);
    expect((sum % 11) % 10).toBe(3); // 267 = 24·11 + 3
    expect(validateInn('7707083893')).toEqual({ ok: true, value: '7707083893' });
    expect(validateInn('7707083893', 'organization').ok).toBe(true);
  });

  it('accepts 500100732259, a person INN, whose two control digits are computed here by hand', () => {
    // first control: weights 7,2,4,10,3,5,9,4,6,8 over 5,0,0,1,0,0,7,3,2,2
    const sum1 = 7 * 5 + 2 * 0 + 4 * 0 + 10 * 1 + 3 * 0 + 5 * 0 + 9 * 7 + 4 * 3 + 6 * 2 + 8 * 2;
    expect(sum1).toBe(148);
    expect((sum1 % 11) % 10).toBe(5); // 148 = 13·11 + 5
    // second control: weights 3,7,2,4,10,3,5,9,4,6,8 over 5,0,0,1,0,0,7,3,2,2,5
    const sum2 =
      3 * 5 + 7 * 0 + 2 * 0 + 4 * 1 + 10 * 0 + 3 * 0 + 5 * 7 + 9 * 3 + 4 * 2 + 6 * 2 + 8 * 5;
    expect(sum2).toBe(141);
    expect((sum2 % 11) % 10).toBe(9); // 141 = 12·11 + 9
    expect(validateInn('500100732259')).toEqual({ ok: true, value: '500100732259' });
    expect(validateInn('500100732259', 'person').ok).toBe(true);
  });

  it('accepts 7736050003, whose third digit exercises the weight 10', () => {
    // 2·7 + 4·7 + 10·3 + 3·6 + 5·0 + 9·5 + 4·0 + 6·0 + 8·0 = 135 = 12·11 + 3
    expect(2 * 7 + 4 * 7 + 10 * 3 + 3 * 6 + 9 * 5).toBe(135);
    expect(validateInn('7736050003').ok).toBe(true);
    expect(validateInn('7736050004')).toMatchObject({ code: 'INN_CHECKSUM' });
  });

  it('accepts a sum whose remainder is 10 as control digit 0 (1000000010: 2·1 + 8·1 = 10)', () => {
    expect(validateInn('1000000010').ok).toBe(true);
    expect(validateInn('1000000011').ok).toBe(false);
  });

  it('normalizes spaces, dashes and surrounding whitespace away', () => {
    expect(validateInn('  7707 083-893\t')).toEqual({ ok: true, value: '7707083893' });
    expect(validateInn('5001\u00a000732259')).toEqual({ ok: true, value: '500100732259' });
  });
});

describe('validateInn: known-invalid values', () => {
  it.each([
    ['', 'empty'],
    ['770708389', '9 digits'],
    ['77070838931', '11 digits'],
    ['5001007322590', '13 digits'],
  ])('rejects %j (%s) with INN_LENGTH', (value) => {
    const result = validateInn(value);
    expect(result).toMatchObject({ ok: false, code: 'INN_LENGTH' });
  });

  it.each([
    ['77070838a3'],
    ['7707O83893'],
    ['７７０７０８３８９３'],
    ['7707.083893'],
    ['+7707083893'],
  ])('rejects %j with INN_FORMAT', (value) => {
    expect(validateInn(value)).toMatchObject({ ok: false, code: 'INN_FORMAT' });
  });

  it.each([
    ['7707083894', 'organization control digit changed'],
    ['7707083393', 'organization body digit changed'],
    ['500100732258', 'person second control digit changed'],
    ['500100732249', 'person first control digit changed'],
    ['500100782259', 'person body digit changed'],
  ])('rejects %j (%s) with INN_CHECKSUM', (value) => {
    expect(validateInn(value)).toMatchObject({ ok: false, code: 'INN_CHECKSUM' });
  });

  it('rejects a valid INN of the other kind when a kind is required, naming the expected length', () => {
    const asPerson = validateInn('7707083893', 'person');
    expect(asPerson).toMatchObject({ ok: false, code: 'INN_LENGTH' });
    if (!asPerson.ok) expect(asPerson.message).toContain('12 цифр');
    const asOrganization = validateInn('500100732259', 'organization');
    expect(asOrganization).toMatchObject({ ok: false, code: 'INN_LENGTH' });
    if (!asOrganization.ok) expect(asOrganization.message).toContain('10 цифр');
  });

  it('gives a Russian message a person can act on', () => {
    const result = validateInn('12345');
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.message).toMatch(/^ИНН должен состоять из 10 цифр .* или из 12 цифр/);
      expect(result.message).toMatch(/[А-Яа-яЁё]/);
    }
  });
});

describe('validateInn agrees with the published formula on arbitrary digit strings', () => {
  // The rule restated from the published description, independently of inn.ts.
  const control = (digits: number[], weights: number[]) =>
    (weights.reduce((sum, w, i) => sum + w * (digits[i] ?? Number.NaN), 0) % 11) % 10;
  const digitString = (length: number) =>
    fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: length, maxLength: length });

  it('10 digits', () => {
    fc.assert(
      fc.property(digitString(9), fc.integer({ min: 0, max: 9 }), (body, last) => {
        const d = [...body].map(Number);
        const expected = control(d, [2, 4, 10, 3, 5, 9, 4, 6, 8]) === last;
        expect(validateInn(body + String(last)).ok).toBe(expected);
      }),
    );
  });

  it('12 digits, half the time with the control digits the formula gives', () => {
    fc.assert(
      fc.property(
        digitString(10),
        fc.boolean(),
        fc.integer({ min: 0, max: 99 }),
        (body, useFormula, other) => {
          const d = [...body].map(Number);
          const c11 = control(d, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]);
          const c12 = control([...d, c11], [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]);
          const tail = useFormula ? c11 * 10 + c12 : other;
          const inn = body + String(tail).padStart(2, '0');
          expect(validateInn(inn).ok).toBe(tail === c11 * 10 + c12);
        },
      ),
    );
  });

  it('every 9-digit body followed by the control digit the formula gives is accepted', () => {
    fc.assert(
      fc.property(digitString(9), (body) => {
        const d = [...body].map(Number);
        const inn = body + String(control(d, [2, 4, 10, 3, 5, 9, 4, 6, 8]));
        expect(validateInn(inn)).toEqual({ ok: true, value: inn });
      }),
    );
  });
});

describe('validateInn: caller mistakes', () => {
  it.each([[7707083893], [null], [undefined], [{}], [['7707083893']]])(
    'throws TypeError for %j',
    (value) => {
      expect(() => validateInn(value as unknown as string)).toThrow(TypeError);
    },
  );

  it('throws TypeError for an unknown kind', () => {
    expect(() => validateInn('7707083893', 'company' as never)).toThrow(TypeError);
  });
});

describe('generateInn and the checksum properties', () => {
  const innOf = (kind: 'person' | 'organization') =>
    randomNumbers.map((numbers) => generateInn(kind, sourceFrom(numbers)));

  it('always generates a valid INN of the requested kind', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('person' as const, 'organization' as const),
        randomNumbers,
        (kind, numbers) => {
          const inn = generateInn(kind, sourceFrom(numbers));
          expect(inn).toMatch(kind === 'person' ? /^\d{12}$/ : /^\d{10}$/);
          expect(inn.slice(0, 2)).not.toBe('00');
          expect(validateInn(inn, kind)).toEqual({ ok: true, value: inn });
        },
      ),
    );
  });

  it('generates valid INNs at the edges of the random range', () => {
    for (const r of [0, 0.5, 1 - Number.EPSILON / 2]) {
      expect(validateInn(generateInn('person', () => r)).ok).toBe(true);
      expect(validateInn(generateInn('organization', () => r)).ok).toBe(true);
    }
  });

  it('is repeatable: the same random numbers give the same INN', () => {
    fc.assert(
      fc.property(randomNumbers, (numbers) => {
        expect(generateInn('person', sourceFrom(numbers))).toBe(
          generateInn('person', sourceFrom(numbers)),
        );
      }),
    );
  });

  it('rejects a random source that leaves [0, 1)', () => {
    expect(() => generateInn('person', () => 1)).toThrow(RangeError);
    expect(() => generateInn('person', () => -0.1)).toThrow(RangeError);
    expect(() => generateInn('person', () => Number.NaN)).toThrow(RangeError);
  });

  // Organization INN: control = (S mod 11) mod 10. A one-digit change moves S by w·δ with
  // w ∈ {2,3,4,5,6,8,9,10} and 0 < |δ| ≤ 9, never a multiple of 11, so S mod 11 always
  // changes. It goes unnoticed only when S mod 11 moves between 0 and 10 (both give 0).
  it('organization INN: changing the control digit always fails', () => {
    fc.assert(
      fc.property(innOf('organization'), fc.integer({ min: 1, max: 9 }), (inn, step) => {
        const changed = withDigit(inn, 9, (Number(inn[9]) + step) % 10);
        expect(validateInn(changed)).toMatchObject({ ok: false, code: 'INN_CHECKSUM' });
      }),
    );
  });

  it('organization INN with control digit other than 0: every single-digit change fails', () => {
    fc.assert(
      fc.property(
        innOf('organization').filter((inn) => !inn.endsWith('0')),
        (inn) => {
          for (const { changed } of singleDigitChanges(inn)) {
            expect(validateInn(changed).ok, changed).toBe(false);
          }
        },
      ),
    );
  });

  it('organization INN: with control digit 0, some body changes go unnoticed (mod 11 mod 10 limit)', () => {
    // 1000000010: S = 2·1 + 8·1 = 10 → 0.  7000000010: S = 2·7 + 8·1 = 22 ≡ 0 → 0.
    expect(validateInn('1000000010').ok).toBe(true);
    expect(validateInn('7000000010').ok).toBe(true);
  });

  // Person INN: a body change at position j moves the first sum by w1·δ and the second by
  // w2·δ (mod 11). To slip through, both would have to move between 0 and 10, i.e. both
  // w1·δ and w2·δ ≡ ±1, so w1 ≡ ±w2 (mod 11). No position's weight pair (7,3) (2,7) (4,2)
  // (10,4) (3,10) (5,3) (9,5) (4,9) (6,4) (8,6) satisfies that; control-digit changes are
  // caught directly. So every one-digit change of a 12-digit INN is detected.
  it('person INN: every single-digit change fails', () => {
    fc.assert(
      fc.property(innOf('person'), (inn) => {
        for (const { changed } of singleDigitChanges(inn)) {
          expect(validateInn(changed), changed).toMatchObject({ ok: false, code: 'INN_CHECKSUM' });
        }
      }),
    );
  });

  it('rejects any digit string of a length other than 10 or 12 with INN_LENGTH', () => {
    fc.assert(
      fc.property(
        fc
          .string({ unit: fc.constantFrom(...'0123456789'), maxLength: 20 })
          .filter((s) => s.length !== 10 && s.length !== 12),
        (s) => {
          expect(validateInn(s)).toMatchObject({ ok: false, code: 'INN_LENGTH' });
        },
      ),
    );
  });
});
