import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateKpp, validateKpp } from './kpp.js';
import { randomNumbers, sourceFrom } from './test-support.js';

const DIGIT = [...'0123456789'];
const REASON = [...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ'];

describe('validateKpp', () => {
  it.each([['773601001'], ['770201001'], ['7736AB001'], ['77360Z001']])('accepts %j', (v) => {
    expect(validateKpp(v)).toEqual({ ok: true, value: v });
  });

  it('normalizes whitespace away and Latin letters to upper case', () => {
    expect(validateKpp(' 7736 01 001 ')).toEqual({ ok: true, value: '773601001' });
    expect(validateKpp('7736ab001')).toEqual({ ok: true, value: '7736AB001' });
  });

  it.each([[''], ['77360100'], ['7736010011'], ['7736-01-001']])(
    'rejects %j with KPP_LENGTH',
    (v) => {
      expect(validateKpp(v)).toMatchObject({ ok: false, code: 'KPP_LENGTH' });
    },
  );

  it.each([
    ['A73601001', 'letter in the tax office code'],
    ['773601A01', 'letter in the last three'],
    ['7736_1001', 'punctuation in the reason code'],
    ['773601O01', 'letter O for zero'],
  ])('rejects %j (%s) with KPP_FORMAT', (v) => {
    const result = validateKpp(v);
    expect(result).toMatchObject({ ok: false, code: 'KPP_FORMAT' });
    if (!result.ok) expect(result.message).toContain('4 цифры');
  });

  it('tells a person who typed Cyrillic letters to switch to Latin', () => {
    const result = validateKpp('7736АВ001'); // Cyrillic А and В
    expect(result).toMatchObject({ ok: false, code: 'KPP_FORMAT' });
    if (!result.ok) expect(result.message).toContain('латинские');
  });

  it('throws TypeError for a non-string', () => {
    expect(() => validateKpp(773601001 as unknown as string)).toThrow(TypeError);
  });

  it('accepts exactly the strings of the form 4 digits, 2 of [0-9A-Z], 3 digits', () => {
    const chars = (alphabet: string[], n: number) =>
      fc.string({ unit: fc.constantFrom(...alphabet), minLength: n, maxLength: n });
    fc.assert(
      fc.property(chars(DIGIT, 4), chars(REASON, 2), chars(DIGIT, 3), (office, reason, tail) => {
        expect(validateKpp(office + reason + tail).ok).toBe(true);
      }),
    );
  });

  it('rejects a letter anywhere outside the fifth and sixth characters', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 8 }).filter((i) => i !== 4 && i !== 5),
        fc.constantFrom(...'ABCXYZ'),
        (index, letter) => {
          const kpp = '773601001';
          const changed = kpp.slice(0, index) + letter + kpp.slice(index + 1);
          expect(validateKpp(changed)).toMatchObject({ ok: false, code: 'KPP_FORMAT' });
        },
      ),
    );
  });
});

describe('generateKpp', () => {
  it('always generates a valid KPP', () => {
    fc.assert(
      fc.property(randomNumbers, (numbers) => {
        const kpp = generateKpp(sourceFrom(numbers));
        expect(validateKpp(kpp)).toEqual({ ok: true, value: kpp });
      }),
    );
    for (const r of [0, 0.85, 1 - Number.EPSILON / 2]) {
      expect(validateKpp(generateKpp(() => r)).ok).toBe(true);
    }
  });

  it('produces both digit and letter reason codes', () => {
    expect(generateKpp(() => 0.1).slice(4, 6)).toMatch(/^\d\d$/);
    expect(generateKpp(() => 0.85).slice(4, 6)).toMatch(/^[A-Z]{2}$/);
  });
});
