/**
 * The canonical bytes of an audit entry: what the Merkle tree hashes as a leaf
 * (leaf hash = SHA-256(0x00 || these bytes)). Deterministic and unambiguous:
 *
 *   0x01                     format version
 *   uint64 big-endian        leaf index
 *   int64 big-endian         time, milliseconds since 1970-01-01T00:00:00Z
 *   str                      actor
 *   str                      action
 *   0x00 | 0x01 str          subject: absent | present
 *   str                      details as canonical JSON (RFC 8785: keys sorted by UTF-16
 *                            code units, no whitespace, ECMAScript number form)
 *
 * where str = uint32 big-endian byte length || the UTF-8 bytes. Documented in
 * docs/audit-log.md; bench/audit.ts builds the same bytes in SQL.
 */
export const LEAF_FORMAT_VERSION = 1;

export interface LeafFields {
  index: number;
  at: Date;
  actor: string;
  action: string;
  subject: string | null;
  details: Record<string, unknown>;
}

export function encodeLeaf(leaf: LeafFields): Buffer {
  if (!Number.isSafeInteger(leaf.index) || leaf.index < 0) {
    throw new RangeError(`bad leaf index ${leaf.index}`);
  }
  const ms = leaf.at.getTime();
  if (!Number.isSafeInteger(ms)) throw new RangeError('bad leaf time');
  const strings = [leaf.actor, leaf.action, leaf.subject, canonicalJson(leaf.details)].map((s) =>
    s === null ? null : Buffer.from(s, 'utf8'),
  );
  const length = 1 + 8 + 8 + 1 + strings.reduce((n, s) => n + (s ? 4 + s.length : 0), 0);
  const out = Buffer.alloc(length);
  let at = out.writeUInt8(LEAF_FORMAT_VERSION, 0);
  at = out.writeBigUInt64BE(BigInt(leaf.index), at);
  at = out.writeBigInt64BE(BigInt(ms), at);
  for (const [i, s] of strings.entries()) {
    if (i === 2) at = out.writeUInt8(s ? 1 : 0, at);
    if (!s) continue;
    at = out.writeUInt32BE(s.length, at);
    at += s.copy(out, at);
  }
  return out;
}

/**
 * RFC 8785 (JSON Canonicalization Scheme) for JSON values: object members sorted by
 * their names' UTF-16 code units, no insignificant whitespace, numbers and strings as
 * ECMAScript's JSON.stringify writes them. Members whose value is undefined are left
 * out, as JSON.stringify does; non-finite numbers and bigints are refused.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JSON has no NaN or Infinity');
      return JSON.stringify(value);
    case 'object': {
      const json = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof json === 'function') return canonicalJson(json.call(value));
      let out: string;
      if (Array.isArray(value)) {
        out = '[';
        for (let i = 0; i < value.length; i++) {
          const v: unknown = value[i];
          if (i > 0) out += ',';
          out += v === undefined || typeof v === 'function' ? 'null' : canonicalJson(v);
        }
        return `${out}]`;
      }
      // Plain loops: `audit verify` canonicalises a million of these.
      const keys = Object.keys(value).sort();
      out = '{';
      for (const key of keys) {
        const v = (value as Record<string, unknown>)[key];
        if (v === undefined || typeof v === 'function') continue;
        if (out.length > 1) out += ',';
        out += `${JSON.stringify(key)}:${canonicalJson(v)}`;
      }
      return `${out}}`;
    }
    default:
      throw new TypeError(`${typeof value} is not JSON`);
  }
}
