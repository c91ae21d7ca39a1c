/** Helpers shared by the tests in this folder; not part of the public API. */
import fc from 'fast-check';
import type { RandomSource } from './random.js';

/**
 * Numbers for a RandomSource, drawn by fast-check so that it explores edge
 * values (0, just below 1) and shrinks failures. Turn them into a source with
 * `sourceFrom` inside the property, so every run starts from the first number.
 */
export const randomNumbers = fc.array(
  fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
  { minLength: 1, maxLength: 64 },
);

/** A RandomSource that returns `values` in order, round and round. */
export function sourceFrom(values: readonly number[]): RandomSource {
  let i = 0;
  return () => {
    const v = values[i % values.length];
    i++;
    if (v === undefined) throw new Error('sourceFrom needs at least one value');
    return v;
  };
}

/** `value` with the digit at `index` replaced by `digit`. */
export function withDigit(value: string, index: number, digit: number): string {
  return value.slice(0, index) + String(digit) + value.slice(index + 1);
}

/** Every string that differs from the digit string `value` in exactly one position. */
export function singleDigitChanges(value: string): { index: number; changed: string }[] {
  const out: { index: number; changed: string }[] = [];
  for (let index = 0; index < value.length; index++) {
    for (let d = 0; d <= 9; d++) {
      if (String(d) !== value[index]) out.push({ index, changed: withDigit(value, index, d) });
    }
  }
  return out;
}
