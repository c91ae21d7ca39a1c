/**
 * The result of validating one Russian identifier.
 *
 * Validators never throw on bad user input: they return `ok: false` with a
 * stable `code` (callers branch on it) and a Russian `message` that tells the
 * person what to fix (for display; the wording may change). Caller mistakes —
 * a non-string where a string is expected — throw TypeError instead.
 *
 * On success `value` is the normalized form: spaces and dashes removed where
 * the format allows them, letters upper-cased.
 */
export type RuValidation<Code extends string = string, Value = string> =
  | { readonly ok: true; readonly value: Value }
  | { readonly ok: false; readonly code: Code; readonly message: string };

export function ok<Value>(value: Value): { readonly ok: true; readonly value: Value } {
  return { ok: true, value };
}

export function fail<Code extends string>(
  code: Code,
  message: string,
): { readonly ok: false; readonly code: Code; readonly message: string } {
  return { ok: false, code, message };
}

/** Throws TypeError unless `value` is a string; `what` names it in the error. */
export function requireString(value: unknown, what: string): string {
  if (typeof value !== 'string') {
    throw new TypeError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

/** Trims and removes every space (including non-breaking ones) and hyphen. */
export function stripSeparators(value: string): string {
  return value.replace(/[\s-]/g, '');
}

const DIGITS = /^\d*$/;

/** True if `value` consists of ASCII digits only (the empty string included). */
export function isDigits(value: string): boolean {
  return DIGITS.test(value);
}

/** The ASCII digits of `value` as numbers; call only after `isDigits`. */
export function digitsOf(value: string): number[] {
  return Array.from(value, (c) => c.charCodeAt(0) - 48);
}

/** Σ weights[i] · digits[i] over the shorter of the two. */
export function weightedSum(digits: readonly number[], weights: readonly number[]): number {
  let sum = 0;
  const n = Math.min(digits.length, weights.length);
  for (let i = 0; i < n; i++) sum += (digits[i] ?? 0) * (weights[i] ?? 0);
  return sum;
}

/**
 * The decimal number written by `digits` modulo `modulus`, computed digit by
 * digit so that no intermediate value exceeds 10 · modulus (exact for any
 * length, no floating-point rounding).
 */
export function decimalMod(digits: string, modulus: number): number {
  let r = 0;
  for (let i = 0; i < digits.length; i++) r = (r * 10 + (digits.charCodeAt(i) - 48)) % modulus;
  return r;
}
