import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  MemoryTree,
  decompose,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';

/*
 * An independent, deliberately naive RFC 6962 §2.1 / RFC 9162 §2.1 implementation: the
 * definitions of MTH, PATH and PROOF transcribed as recursive functions over the leaf
 * data, sharing nothing with merkle.ts but SHA-256.
 */
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const naiveK = (n: number) => {
  let k = 1;
  while (k < n) k <<= 1;
  return k >> 1; // the largest power of two < n
};
function MTH(D: Buffer[]): Buffer {
  const n = D.length;
  if (n === 0) return sha256();
  if (n === 1) return sha256(Buffer.from([0]), D[0]!);
  const k = naiveK(n);
  return sha256(Buffer.from([1]), MTH(D.slice(0, k)), MTH(D.slice(k)));
}
function PATH(m: number, D: Buffer[]): Buffer[] {
  const n = D.length;
  if (n <= 1) return [];
  const k = naiveK(n);
  return m < k
    ? [...PATH(m, D.slice(0, k)), MTH(D.slice(k))]
    : [...PATH(m - k, D.slice(k)), MTH(D.slice(0, k))];
}
function SUBPROOF(m: number, D: Buffer[], b: boolean): Buffer[] {
  const n = D.length;
  if (m === n) return b ? [] : [MTH(D)];
  const k = naiveK(n);
  return m <= k
    ? [...SUBPROOF(m, D.slice(0, k), b), MTH(D.slice(k))]
    : [...SUBPROOF(m - k, D.slice(k), false), MTH(D.slice(0, k))];
}
const PROOF = (m: number, D: Buffer[]) => SUBPROOF(m, D, true);

function treeOf(D: Buffer[]): MemoryTree {
  const tree = new MemoryTree();
  for (const d of D) tree.append(leafHash(d));
  return tree;
}
const hex = (bs: Buffer[]) => bs.map((b) => b.toString('hex'));
const flip = (b: Buffer, bit: number) => {
  const c = Buffer.from(b);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

const leaves = (min: number, max: number) =>
  fc.array(fc.uint8Array({ maxLength: 24 }).map(Buffer.from), { minLength: min, maxLength: max });

describe('Merkle tree (RFC 9162 §2.1)', () => {
  it('matches the certificate-transparency reference roots for the first 8 test leaves', () => {
    const data = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657'];
    data.push('606162636465666768696a6b6c6d6e6f');
    const roots = [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
      '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
      'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    ];
    const D = data.map((d) => Buffer.from(d, 'hex'));
    const tree = treeOf(D);
    for (let n = 1; n <= 8; n++) {
      expect(MTH(D.slice(0, n)).toString('hex')).toBe(roots[n - 1]);
      expect(tree.root(n).toString('hex')).toBe(roots[n - 1]);
    }
    expect(tree.root(0)).toEqual(EMPTY_ROOT);
    expect(EMPTY_ROOT.toString('hex')).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('computes the root of every prefix as the naive MTH does', () => {
    fc.assert(
      fc.property(leaves(0, 140), (D) => {
        const tree = treeOf(D);
        for (let n = 0; n <= D.length; n++) {
          expect(tree.root(n).toString('hex')).toBe(MTH(D.slice(0, n)).toString('hex'));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('gives the naive PATH for any leaf of any tree, and it verifies', () => {
    fc.assert(
      fc.property(
        leaves(1, 600).chain((D) =>
          fc.tuple(
            fc.constant(D),
            fc
              .integer({ min: 1, max: D.length })
              .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
          ),
        ),
        ([D, [n, m]]) => {
          const tree = treeOf(D);
          const proof = tree.inclusionProof(m, n);
          expect(hex(proof)).toEqual(hex(PATH(m, D.slice(0, n))));
          expect(verifyInclusion(m, n, leafHash(D[m]!), proof, MTH(D.slice(0, n)))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the naive PROOF between any two sizes of any tree, and it verifies', () => {
    fc.assert(
      fc.property(
        leaves(1, 600).chain((D) =>
          fc.tuple(
            fc.constant(D),
            fc
              .integer({ min: 1, max: D.length })
              .chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n))),
          ),
        ),
        ([D, [m, n]]) => {
          const tree = treeOf(D);
          const proof = tree.consistencyProof(m, n);
          expect(hex(proof)).toEqual(hex(PROOF(m, D.slice(0, n))));
          expect(verifyConsistency(m, n, MTH(D.slice(0, m)), MTH(D.slice(0, n)), proof)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('checks every leaf and every pair of sizes of small trees exhaustively', () => {
    for (let n = 1; n <= 40; n++) {
      const D = Array.from({ length: n }, (_, i) => Buffer.from(`leaf ${i}`));
      const tree = treeOf(D);
      const root = MTH(D);
      for (let m = 0; m < n; m++) {
        const proof = tree.inclusionProof(m, n);
        expect(hex(proof)).toEqual(hex(PATH(m, D)));
        expect(verifyInclusion(m, n, leafHash(D[m]!), proof, root)).toBe(true);
      }
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        expect(hex(proof)).toEqual(hex(PROOF(m, D)));
        expect(verifyConsistency(m, n, MTH(D.slice(0, m)), root, proof)).toBe(true);
      }
    }
  });

  it('decomposes right-edge nodes into complete subtrees', () => {
    expect(decompose(0, 7)).toEqual([
      { level: 2, index: 0 },
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ]);
    expect(decompose(8, 16)).toEqual([{ level: 3, index: 1 }]);
    expect(() => decompose(3, 7)).toThrow(/not a node/);
  });
});

describe('forged proofs are refused', () => {
  /** Distinct leaves (as audit entries are: each carries its index), so a forgery never
   * happens to be a genuine proof of a repeated leaf. */
  const unique = (min: number, max: number) =>
    leaves(min, max).map((D) => D.map((d, i) => Buffer.concat([d, Buffer.from(`#${i}`)])));
  /** A tree, a leaf in it and its genuine proof; each forgery changes one thing. */
  const setting = unique(2, 300).chain((D) =>
    fc.tuple(
      fc.constant(D),
      fc
        .integer({ min: 2, max: D.length })
        .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))),
      fc.nat(),
    ),
  );

  it('inclusion: wrong index, wrong size, flipped bit, truncated or padded path, wrong leaf or root, another tree', () => {
    fc.assert(
      fc.property(setting, unique(2, 300), ([D, [n, m], r], other) => {
        const tree = treeOf(D);
        const root = tree.root(n);
        const leaf = leafHash(D[m]!);
        const proof = tree.inclusionProof(m, n);
        expect(verifyInclusion(m, n, leaf, proof, root)).toBe(true);

        // Another index: the same proof cannot place the leaf elsewhere.
        const m2 = (m + 1 + (r % (n - 1))) % n;
        expect(verifyInclusion(m2, n, leaf, proof, root)).toBe(false);
        expect(verifyInclusion(n, n, leaf, proof, root)).toBe(false);
        expect(verifyInclusion(-1, n, leaf, proof, root)).toBe(false);
        // Another size (with that size's genuine root): only that size's own proof passes.
        // (The same root under another size is no forgery: a signed checkpoint binds the
        // size to its root, and the RFC's algorithm cannot tell some sizes apart by shape.)
        for (const n2 of [n - 1, n + 1]) {
          if (n2 > m && n2 <= D.length) {
            expect(verifyInclusion(m, n2, leaf, proof, tree.root(n2))).toBe(
              hex(proof).join() === hex(tree.inclusionProof(m, n2)).join(),
            );
          }
        }
        // A flipped bit anywhere in the path, the leaf hash or the root.
        if (proof.length > 0) {
          const i = r % proof.length;
          const forged = proof.map((p, j) => (j === i ? flip(p, r % 256) : p));
          expect(verifyInclusion(m, n, leaf, forged, root)).toBe(false);
          expect(verifyInclusion(m, n, leaf, proof.slice(0, -1), root)).toBe(false);
          expect(verifyInclusion(m, n, leaf, proof.slice(1), root)).toBe(false);
        }
        expect(verifyInclusion(m, n, leaf, [...proof, leaf], root)).toBe(false);
        expect(verifyInclusion(m, n, flip(leaf, r % 256), proof, root)).toBe(false);
        expect(verifyInclusion(m, n, leaf, proof, flip(root, r % 256))).toBe(false);
        // The raw data instead of its leaf hash (no domain separation bypass).
        expect(verifyInclusion(m, n, sha256(D[m]!), proof, root)).toBe(false);
        // A proof from another tree of the same size.
        const alien = treeOf([...other, ...D].slice(0, n));
        const alienProof = alien.inclusionProof(m, n);
        if (hex(alienProof).join() !== hex(proof).join()) {
          expect(verifyInclusion(m, n, leaf, alienProof, root)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('leaf data cannot pass for an interior node (domain separation)', () => {
    const D = Array.from({ length: 8 }, (_, i) => Buffer.from([i]));
    const tree = treeOf(D);
    // The node over leaves 0 and 1 sits where leaf 0 of a 4-leaf tree of nodes would: an
    // attacker offers the bytes left || right as leaf data. Its leaf hash is not the node.
    const proof = [tree.subtree(1, 1)!, tree.subtree(2, 1)!];
    expect(verifyInclusion(0, 4, tree.subtree(1, 0)!, proof, tree.root(8))).toBe(true);
    const forged = Buffer.concat([tree.subtree(0, 0)!, tree.subtree(0, 1)!]);
    expect(verifyInclusion(0, 4, leafHash(forged), proof, tree.root(8))).toBe(false);
  });

  it('consistency: wrong sizes, flipped bit, truncated or padded path, swapped roots, another tree', () => {
    fc.assert(
      fc.property(setting, unique(2, 300), ([D, [n, m0], r], other) => {
        const m = Math.max(1, m0);
        if (m === n) return;
        const tree = treeOf(D);
        const [r1, r2] = [tree.root(m), tree.root(n)];
        const proof = tree.consistencyProof(m, n);
        expect(verifyConsistency(m, n, r1, r2, proof)).toBe(true);

        expect(verifyConsistency(n, m, r2, r1, proof)).toBe(false);
        expect(verifyConsistency(m, n, r2, r1, proof)).toBe(false);
        expect(verifyConsistency(0, n, r1, r2, proof)).toBe(false);
        expect(verifyConsistency(m, n, r1, r2, [])).toBe(false);
        // Other sizes (with their genuine roots): only their own proof passes.
        for (const [a, b] of [
          [m + 1, n],
          [m - 1, n],
          [m, n + 1],
          [m, n - 1],
        ] as const) {
          if (a >= 1 && a < b && b <= D.length) {
            expect(verifyConsistency(a, b, tree.root(a), tree.root(b), proof)).toBe(
              hex(proof).join() === hex(tree.consistencyProof(a, b)).join(),
            );
          }
        }
        const i = r % proof.length;
        const forged = proof.map((p, j) => (j === i ? flip(p, r % 256) : p));
        expect(verifyConsistency(m, n, r1, r2, forged)).toBe(false);
        expect(verifyConsistency(m, n, r1, r2, proof.slice(0, -1))).toBe(false);
        expect(verifyConsistency(m, n, r1, r2, [...proof, r1])).toBe(false);
        expect(verifyConsistency(m, n, flip(r1, r % 256), r2, proof)).toBe(false);
        expect(verifyConsistency(m, n, r1, flip(r2, r % 256), proof)).toBe(false);

        // A proof made on another tree (where it differs from the genuine one).
        const alien = treeOf([...other, ...D].slice(0, n));
        const alienProof = alien.consistencyProof(m, n);
        if (hex(alienProof).join() !== hex(proof).join()) {
          expect(verifyConsistency(m, n, r1, r2, alienProof)).toBe(false);
        }
        if (!alien.root(n).equals(r2)) {
          expect(verifyConsistency(m, n, r1, alien.root(n), proof)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a rewritten history is not consistent with the checkpoint before it', () => {
    const D = Array.from({ length: 100 }, (_, i) => Buffer.from(`entry ${i}`));
    const honest = treeOf(D);
    const rewritten = treeOf(D.map((d, i) => (i === 37 ? Buffer.from('entry 37 (edited)') : d)));
    expect(rewritten.root(37)).toEqual(honest.root(37));
    expect(
      verifyConsistency(
        50,
        100,
        honest.root(50),
        rewritten.root(100),
        rewritten.consistencyProof(50, 100),
      ),
    ).toBe(false);
    expect(
      verifyConsistency(
        30,
        100,
        honest.root(30),
        rewritten.root(100),
        rewritten.consistencyProof(30, 100),
      ),
    ).toBe(true);
  });
});
