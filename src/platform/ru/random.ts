/**
 * A source of uniform random numbers in [0, 1), like Math.random. Generators
 * take one as an argument so that tests can make them repeatable.
 */
export type RandomSource = () => number;

function draw(random: RandomSource): number {
  if (typeof random !== 'function') throw new TypeError('random must be a function');
  const r = random();
  if (typeof r !== 'number' || !(r >= 0 && r < 1)) {
    throw new RangeError(`random() must return a number in [0, 1), got ${String(r)}`);
  }
  return r;
}

/** A uniform integer in [min, max], both inclusive. */
export function randomInt(random: RandomSource, min: number, max: number): number {
  const span = max - min + 1;
  // Math.min guards against r · span rounding up to span when r is just below 1.
  return min + Math.min(span - 1, Math.floor(draw(random) * span));
}

/** `count` uniform random decimal digits as a string. */
export function randomDigits(random: RandomSource, count: number): string {
  let s = '';
  for (let i = 0; i < count; i++) s += String(randomInt(random, 0, 9));
  return s;
}

/** A two-digit region code from 01 to 99 (never 00), as real numbers start. */
export function randomRegion(random: RandomSource): string {
  return String(randomInt(random, 1, 99)).padStart(2, '0');
}

/** One element of `items`, chosen uniformly. */
export function randomPick<T>(random: RandomSource, items: readonly T[]): T {
  const item = items[randomInt(random, 0, items.length - 1)];
  if (item === undefined) throw new RangeError('randomPick needs a non-empty list');
  return item;
}
