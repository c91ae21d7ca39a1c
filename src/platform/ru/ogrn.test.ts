import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateOgrn, generateOgrnip, validateOgrn, validateOgrnip } from './ogrn.js';
import { randomNumbers, singleDigitChanges, sourceFrom, withDigit } from './test-support.js';

const digitString = (length: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: length, maxLength: length });

describe('validateOgrn: known values', () => {
  it('accepts 1027700132195, with the control digit computed here with BigInt', () => {
    // 10 ≡ −1 (mod 11), so N mod 11 is the alternating digit sum from the right:
    // 9−1+2−3+1−0+0−7+7−2+0−1 = 5
    expect(102770013219n % 11n).toBe(5n);
    expect(validateOgrn('1027700132195')).toEqual({ ok: true, value: '1027700132195' });
  });

  it('accepts remainder 10 as control digit 0', () => {
    expect(102770013202n % 11n).toBe(10n);
    expect(validateOgrn('1027700132020').ok).toBe(true);
  });

  it('normalizes spaces and dashes away', () => {
    expect(validateOgrn(' 1 02 77 00 132195 ')).toEqual({ ok: true, value: '1027700132195' });
  });

  it.each([[''], ['102770013219'], ['10277001321950']])('rejects %j with OGRN_LENGTH', (v) => {
    expect(validateOgrn(v)).toMatchObject({ ok: false, code: 'OGRN_LENGTH' });
  });

  it('points a person who typed a 15-digit OGRNIP to the right field', () => {
    const result = validateOgrn('304500116000157');
    expect(result).toMatchObject({ ok: false, code: 'OGRN_LENGTH' });
    if (!result.ok) expect(result.message).toContain('ОГРНИП');
  });

  it.each([['102770013219S'], ['1027700132l95'], ['1027700132195.']])(
    'rejects %j with OGRN_FORMAT',
    (v) => {
      expect(validateOgrn(v)).toMatchObject({ ok: false, code: 'OGRN_FORMAT' });
    },
  );

  it.each([['1027700132196'], ['1027700132395'], ['2027700132195']])(
    'rejects %j (one digit changed) with OGRN_CHECKSUM',
    (v) => {
      expect(validateOgrn(v)).toMatchObject({ ok: false, code: 'OGRN_CHECKSUM' });
    },
  );

  it('throws TypeError for a non-string', () => {
    expect(() => validateOgrn(1027700132195 as unknown as string)).toThrow(TypeError);
  });
});

describe('validateOgrnip: known values', () => {
  it('accepts 304500116000157, with the control digit computed here with BigInt', () => {
    expect(30450011600015n % 13n).toBe(7n);
    expect(validateOgrnip('304500116000157')).toEqual({ ok: true, value: '304500116000157' });
  });

  it('accepts remainders 10–12 as control digits 0–2', () => {
    expect(30450011600005n % 13n).toBe(10n);
    expect(validateOgrnip('304500116000050').ok).toBe(true);
    expect(validateOgrnip('304500116000051')).toMatchObject({ code: 'OGRNIP_CHECKSUM' });
  });

  it.each([[''], ['30450011600015'], ['3045001160001570']])(
    'rejects %j with OGRNIP_LENGTH',
    (v) => {
      expect(validateOgrnip(v)).toMatchObject({ ok: false, code: 'OGRNIP_LENGTH' });
    },
  );

  it('points a person who typed a 13-digit OGRN to the right field', () => {
    const result = validateOgrnip('1027700132195');
    expect(result).toMatchObject({ ok: false, code: 'OGRNIP_LENGTH' });
    if (!result.ok) expect(result.message).toContain('ОГРН организации');
  });

  it('rejects letters with OGRNIP_FORMAT and a changed digit with OGRNIP_CHECKSUM', () => {
    expect(validateOgrnip('30450011600015I')).toMatchObject({ code: 'OGRNIP_FORMAT' });
    expect(validateOgrnip('304500116000158')).toMatchObject({ code: 'OGRNIP_CHECKSUM' });
    expect(validateOgrnip('304500116100157')).toMatchObject({ code: 'OGRNIP_CHECKSUM' });
  });

  it('throws TypeError for a non-string', () => {
    expect(() => validateOgrnip(undefined as unknown as string)).toThrow(TypeError);
  });
});

describe('digit-wise arithmetic agrees with BigInt on arbitrary digit strings', () => {
  it('OGRN', () => {
    fc.assert(
      fc.property(digitString(13), (s) => {
        const expected = (BigInt(s.slice(0, 12)) % 11n) % 10n === BigInt(s[12] ?? '');
        expect(validateOgrn(s).ok).toBe(expected);
      }),
    );
  });

  it('OGRNIP', () => {
    fc.assert(
      fc.property(digitString(15), (s) => {
        const expected = (BigInt(s.slice(0, 14)) % 13n) % 10n === BigInt(s[14] ?? '');
        expect(validateOgrnip(s).ok).toBe(expected);
      }),
    );
  });
});

describe('generators and the checksum properties', () => {
  const ogrnArb = randomNumbers.map((n) => generateOgrn(sourceFrom(n)));
  const ogrnipArb = randomNumbers.map((n) => generateOgrnip(sourceFrom(n)));

  it('always generate valid numbers of the right shape', () => {
    fc.assert(
      fc.property(randomNumbers, (numbers) => {
        const ogrn = generateOgrn(sourceFrom(numbers));
        expect(ogrn).toMatch(/^[15]\d{12}$/);
        expect(validateOgrn(ogrn)).toEqual({ ok: true, value: ogrn });
        const ogrnip = generateOgrnip(sourceFrom(numbers));
        expect(ogrnip).toMatch(/^3\d{14}$/);
        expect(validateOgrnip(ogrnip)).toEqual({ ok: true, value: ogrnip });
      }),
    );
    for (const r of [0, 1 - Number.EPSILON / 2]) {
      expect(validateOgrn(generateOgrn(() => r)).ok).toBe(true);
      expect(validateOgrnip(generateOgrnip(() => r)).ok).toBe(true);
    }
  });

  it('changing the control digit always fails', () => {
    fc.assert(
      fc.property(ogrnArb, ogrnipArb, fc.integer({ min: 1, max: 9 }), (ogrn, ogrnip, step) => {
        expect(validateOgrn(withDigit(ogrn, 12, (Number(ogrn[12]) + step) % 10)).ok).toBe(false);
        expect(validateOgrnip(withDigit(ogrnip, 14, (Number(ogrnip[14]) + step) % 10)).ok).toBe(
          false,
        );
      }),
    );
  });

  // OGRN: changing the digit at 10^p by δ moves N mod 11 by δ·(−1)^p ≠ 0, so the remainder
  // always changes; the control digit stays the same only if the remainder moves between 0
  // and 10, which needs δ = ±1. Hence: a change by 2 or more is always caught, and so is
  // every change when the control digit isn't 0.
  it('OGRN: changing a digit by 2 or more always fails', () => {
    fc.assert(
      fc.property(ogrnArb, (ogrn) => {
        for (const { index, changed } of singleDigitChanges(ogrn)) {
          if (Math.abs(Number(changed[index]) - Number(ogrn[index])) < 2) continue;
          expect(validateOgrn(changed).ok, changed).toBe(false);
        }
      }),
    );
  });

  it('OGRN with control digit other than 0: every single-digit change fails', () => {
    fc.assert(
      fc.property(
        ogrnArb.filter((o) => !o.endsWith('0')),
        (ogrn) => {
          for (const { changed } of singleDigitChanges(ogrn)) {
            expect(validateOgrn(changed).ok, changed).toBe(false);
          }
        },
      ),
    );
  });

  it('OGRN: a change by one can go unnoticed when the remainder moves between 10 and 0', () => {
    expect(102770013202n % 11n).toBe(10n);
    expect(2770013202n % 11n).toBe(0n); // first digit 1 → 0
    expect(validateOgrn('1027700132020').ok).toBe(true);
    expect(validateOgrn('0027700132020').ok).toBe(true);
  });

  // OGRNIP: N mod 13 always changes (13 is prime, |δ| < 13), and remainders 0–12 collide
  // under mod 10 only in the pairs 0/10, 1/11, 2/12. A control digit of 3–9 therefore pins
  // the remainder, and every single-digit change is caught.
  it('OGRNIP with control digit 3–9: every single-digit change fails', () => {
    fc.assert(
      fc.property(
        ogrnipArb.filter((o) => Number(o[14]) >= 3),
        (ogrnip) => {
          for (const { changed } of singleDigitChanges(ogrnip)) {
            expect(validateOgrnip(changed).ok, changed).toBe(false);
          }
        },
      ),
    );
  });

  it('OGRNIP: with control digit 0–2 some changes go unnoticed', () => {
    expect(30450011600005n % 13n).toBe(10n);
    expect(20450011600005n % 13n).toBe(0n); // first digit 3 → 2
    expect(validateOgrnip('304500116000050').ok).toBe(true);
    expect(validateOgrnip('204500116000050').ok).toBe(true);
  });
});
