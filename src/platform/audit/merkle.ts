import { createHash, hash } from 'node:crypto';

/**
 * The Merkle tree of RFC 6962 / RFC 9162 §2.1, with SHA-256:
 *
 *   MTH({})       = SHA-256()
 *   MTH({d(0)})   = SHA-256(0x00 || d(0))                       leaf hash
 *   MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))  node hash, n > 1,
 *                   k the largest power of two smaller than n
 *
 * Every node of such a tree is a range of leaves [start, end). Nodes off the right edge are
 * complete: 2^level leaves starting at a multiple of 2^level, named here `{ level, index }`
 * (leaves [index·2^level, (index+1)·2^level)). A node on the right edge is the fold of the
 * complete subtrees its size decomposes into, so anything that can hand out complete
 * subtree hashes (all leaves in memory, or tiles and stored nodes in a database) can
 * compute any root or proof with the functions below.
 *
 * Proof shapes follow RFC 9162 §2.1.3.1 (PATH) and §2.1.4.1 (PROOF / SUBPROOF); their
 * verification follows §2.1.3.2 and §2.1.4.2 step by step. Sizes and indexes are plain
 * numbers (safe up to 2^53 leaves), and no bitwise operators are used on them.
 */
export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// One-shot crypto.hash over one buffer: about twice as fast as createHash().update()… for
// inputs this small, which `audit verify` hashes two million of per million entries.
export function leafHash(leaf: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, leaf]), 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = NODE_PREFIX[0]!;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash('sha256', input, 'buffer');
}

/** A range of leaves [start, end) that is a node of some tree. */
export type Range = readonly [start: number, end: number];

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). */
export interface Subtree {
  level: number;
  index: number;
}

/** k of the split rule: the largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  if (!(n >= 2)) throw new RangeError(`no split point for a tree of ${n} leaves`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function log2(powerOfTwo: number): number {
  let level = 0;
  for (let n = powerOfTwo; n > 1; n /= 2) level++;
  return level;
}

/**
 * The complete subtrees of the node [start, end), left to right: its hash is their fold
 * from the right, H(s0, H(s1, … H(sk-1, sk))). For a complete node, itself.
 */
export function decompose(start: number, end: number): Subtree[] {
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && end > start)) {
    throw new RangeError(`[${start}, ${end}) is not a node`);
  }
  const parts: Subtree[] = [];
  while (start < end) {
    const size = end - start;
    const width = isPowerOfTwo(size) ? size : splitPoint(size);
    if (start % width !== 0) throw new RangeError(`[${start}, ${end}) is not a node of any tree`);
    parts.push({ level: log2(width), index: start / width });
    start += width;
  }
  return parts;
}

/** Complete subtree hashes by level and index; undefined when not available. */
export type SubtreeHashes = (level: number, index: number) => Buffer | undefined;

/** MTH(D[start:end]) from complete subtree hashes. */
export function rangeHash(hashes: SubtreeHashes, start: number, end: number): Buffer {
  const parts = decompose(start, end);
  let hash: Buffer | undefined;
  for (let i = parts.length - 1; i >= 0; i--) {
    const { level, index } = parts[i]!;
    const part = hashes(level, index);
    if (!part) throw new Error(`subtree ${level}/${index} is not available`);
    hash = hash ? nodeHash(part, hash) : part;
  }
  return hash!;
}

/** MTH of the first `size` leaves. */
export function rootHash(hashes: SubtreeHashes, size: number): Buffer {
  return size === 0 ? EMPTY_ROOT : rangeHash(hashes, 0, size);
}

/** The nodes whose hashes make PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf side first. */
export function inclusionRanges(index: number, size: number): Range[] {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  }
  const ranges: Range[] = [];
  // PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])       when m < k
  //               = PATH(m - k, D[k:n]) : MTH(D[0:k])   otherwise
  // The recursion only prepends, so walking down and appending in reverse gives the list.
  let [m, start, n] = [index, 0, size];
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      ranges.push([start + k, start + n]);
      n = k;
    } else {
      ranges.push([start, start + k]);
      m -= k;
      start += k;
      n -= k;
    }
  }
  return ranges.reverse();
}

/** The nodes whose hashes make PROOF(first, D[second]) (RFC 9162 §2.1.4.1). */
export function consistencyRanges(first: number, second: number): Range[] {
  if (
    !(Number.isSafeInteger(first) && Number.isSafeInteger(second) && first >= 1) ||
    first > second
  ) {
    throw new RangeError(`no consistency proof from ${first} to ${second}`);
  }
  // SUBPROOF(m, D[m], true) = {};  SUBPROOF(m, D[m], false) = {MTH(D[m])}
  // m < n: SUBPROOF(m, D[0:k], b) : MTH(D[k:n])           when m <= k
  //        SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])   otherwise
  const ranges: Range[] = [];
  let [m, start, n, whole] = [first, 0, second, true];
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      ranges.push([start + k, start + n]);
      n = k;
    } else {
      ranges.push([start, start + k]);
      m -= k;
      start += k;
      n -= k;
      whole = false;
    }
  }
  if (!whole) ranges.push([start, start + n]);
  return ranges.reverse();
}

export function inclusionProof(hashes: SubtreeHashes, index: number, size: number): Buffer[] {
  return inclusionRanges(index, size).map(([a, b]) => rangeHash(hashes, a, b));
}

export function consistencyProof(hashes: SubtreeHashes, first: number, second: number): Buffer[] {
  return consistencyRanges(first, second).map(([a, b]) => rangeHash(hashes, a, b));
}

/** The complete subtrees a set of ranges needs, each once (to fetch them in one go). */
export function subtreesOf(ranges: readonly Range[]): Subtree[] {
  const seen = new Map<string, Subtree>();
  for (const [a, b] of ranges) {
    for (const s of decompose(a, b)) seen.set(`${s.level}/${s.index}`, s);
  }
  return [...seen.values()];
}

const odd = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === HASH_BYTES && Buffer.compare(a, b) === 0;
}

/** RFC 9162 §2.1.3.2: does `path` prove leaf `index` with `hash` in the tree `root` of `size`? */
export function verifyInclusion(
  index: number,
  size: number,
  hash: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0)) return false;
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = hash;
  for (const p of path) {
    if (p.length !== HASH_BYTES) return false;
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = nodeHash(p, r);
      if (!odd(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!odd(fn) && fn !== 0);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(r, root);
}

/**
 * RFC 9162 §2.1.4.2: does `path` prove that the tree `secondRoot` of `second` leaves
 * extends the tree `firstRoot` of `first` leaves? Equal sizes need an empty path and
 * equal roots.
 */
export function verifyConsistency(
  first: number,
  second: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  path: readonly Uint8Array[],
): boolean {
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(second))) return false;
  if (first < 1 || first > second) return false;
  if (first === second) return path.length === 0 && sameHash(firstRoot, secondRoot);
  if (path.length === 0) return false;
  if (path.some((p) => p.length !== HASH_BYTES)) return false;
  const nodes = isPowerOfTwo(first) ? [firstRoot, ...path] : [...path];
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Uint8Array = nodes[0]!;
  let sr: Uint8Array = nodes[0]!;
  for (const c of nodes.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (!odd(fn)) {
        do {
          fn = half(fn);
          sn = half(sn);
        } while (!odd(fn) && fn !== 0);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && sameHash(fr, firstRoot) && sameHash(sr, secondRoot);
}

/**
 * A whole tree in memory: every complete subtree hash, by level, 2·n hashes for n leaves
 * (64 MB for a million). Used by `audit verify` to recompute the tree from the entries
 * and then check roots and consistency proofs at every checkpoint.
 */
export class MemoryTree {
  readonly #levels: Buffer[] = [];
  readonly #counts: number[] = [];

  get size(): number {
    return this.#counts[0] ?? 0;
  }

  append(leaf: Uint8Array): void {
    let hash: Uint8Array = leaf;
    for (let level = 0; ; level++) {
      const index = this.#push(level, hash);
      if (index % 2 === 0) return;
      hash = nodeHash(this.#at(level, index - 1), hash);
    }
  }

  /** The hash of a complete subtree, if all its leaves are in. */
  readonly subtree: SubtreeHashes = (level, index) =>
    index < (this.#counts[level] ?? 0) ? this.#at(level, index) : undefined;

  root(size = this.size): Buffer {
    return rootHash(this.subtree, size);
  }

  inclusionProof(index: number, size = this.size): Buffer[] {
    return inclusionProof(this.subtree, index, size);
  }

  consistencyProof(first: number, second = this.size): Buffer[] {
    return consistencyProof(this.subtree, first, second);
  }

  #at(level: number, index: number): Buffer {
    const offset = index * HASH_BYTES;
    return this.#levels[level]!.subarray(offset, offset + HASH_BYTES);
  }

  #push(level: number, hash: Uint8Array): number {
    const count = this.#counts[level] ?? 0;
    let buffer = this.#levels[level];
    if (!buffer || buffer.length < (count + 1) * HASH_BYTES) {
      const grown = Buffer.allocUnsafe(Math.max(1024, (count + 1) * 2) * HASH_BYTES);
      buffer?.copy(grown, 0, 0, count * HASH_BYTES);
      this.#levels[level] = buffer = grown;
    }
    buffer.set(hash, count * HASH_BYTES);
    this.#counts[level] = count + 1;
    return count;
  }
}
