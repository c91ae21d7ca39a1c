import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, encodeLeaf } from './leaf.js';

describe('canonical leaf encoding', () => {
  it('lays the fields out as documented', () => {
    const leaf = encodeLeaf({
      index: 5,
      at: new Date('2026-12-01T09:00:00.000Z'),
      actor: 'a',
      action: 'bc',
      subject: null,
      details: { b: 1, a: 'x' },
    });
    const ms = new Date('2026-12-01T09:00:00.000Z').getTime();
    const expected = Buffer.concat([
      Buffer.from([1]),
      Buffer.from('0000000000000005', 'hex'),
      (() => {
        const b = Buffer.alloc(8);
        b.writeBigInt64BE(BigInt(ms));
        return b;
      })(),
      Buffer.from('00000001', 'hex'),
      Buffer.from('a'),
      Buffer.from('00000002', 'hex'),
      Buffer.from('bc'),
      Buffer.from([0]),
      Buffer.from('0000000f', 'hex'),
      Buffer.from('{"a":"x","b":1}'),
    ]);
    expect(leaf.toString('hex')).toBe(expected.toString('hex'));
    const withSubject = encodeLeaf({
      index: 5,
      at: new Date(ms),
      actor: 'a',
      action: 'bc',
      subject: '',
      details: {},
    });
    expect(withSubject.subarray(28, 33).toString('hex')).toBe('0100000000');
  });

  it('is unambiguous: different entries never share bytes', () => {
    const entry = fc.record({
      index: fc.nat(),
      at: fc.integer({ min: 0, max: 4e12 }).map((t) => new Date(t)),
      actor: fc.string(),
      action: fc.string(),
      subject: fc.option(fc.string()),
      details: fc.dictionary(fc.string(), fc.jsonValue()),
    });
    fc.assert(
      fc.property(entry, entry, (a, b) => {
        const same =
          a.index === b.index &&
          a.at.getTime() === b.at.getTime() &&
          a.actor === b.actor &&
          a.action === b.action &&
          a.subject === b.subject &&
          canonicalJson(a.details) === canonicalJson(b.details);
        expect(encodeLeaf(a).equals(encodeLeaf(b))).toBe(same);
      }),
    );
  });

  it('canonical JSON (RFC 8785): sorted members by UTF-16 code units, ECMAScript numbers', () => {
    expect(canonicalJson({ b: [1, 'x', null, true], a: { d: 1e21, c: 0.1 }, e: undefined })).toBe(
      '{"a":{"c":0.1,"d":1e+21},"b":[1,"x",null,true]}',
    );
    // RFC 8785 §3.2.3's sorting example: by UTF-16 code units, not code points.
    expect(
      canonicalJson({
        '\u20ac': 'Euro',
        '\r': 'CR',
        '\ufb33': 'Hebrew',
        '1': 'One',
        '\ud83d\ude00': 'Emoji',
        '\u0080': 'Ctl',
        '\u00f6': 'o',
      }),
    ).toBe(
      '{"\\r":"CR","1":"One","\u0080":"Ctl","\u00f6":"o","\u20ac":"Euro","\ud83d\ude00":"Emoji","\ufb33":"Hebrew"}',
    );
    expect(canonicalJson({ n: -0, big: 333333333.3333333, tiny: 5e-7 })).toBe(
      '{"big":333333333.3333333,"n":0,"tiny":5e-7}',
    );
    expect(() => canonicalJson({ x: Number.NaN })).toThrow();
  });

  it('gives the same bytes for a value and its JSON round trip', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (details) => {
        const again = JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
        expect(canonicalJson(again)).toBe(canonicalJson(details));
      }),
    );
  });
});
