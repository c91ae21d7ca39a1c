import { x509 } from './x509.js';

export interface SubjectName {
  commonName: string;
  organization?: string;
}

const MAX_NAME_LENGTH = 64; // the X.520 upper bound for both CN and O

function requireNameField(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_NAME_LENGTH) {
    throw new TypeError(`${what} must be a non-empty string of at most ${MAX_NAME_LENGTH} chars`);
  }
  // Control characters in a DN end up in logs and in OpenSSL's one-line output.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new TypeError(`${what} must not contain control characters`);
  }
}

/**
 * One attribute value with an explicit ASN.1 string type. The library's plain
 * string form is parsed like RFC 4514 text ("#…" is read as hex DER, quotes
 * and backslashes are unescaped), so a partner named `#0c01` or `"a"` would
 * not come out as typed. PrintableString where it fits, as is conventional,
 * else UTF8String (RFC 5280 allows exactly these two for new certificates).
 */
function attributeValue(value: string): x509.JsonAttributeObject {
  return x509.Name.isPrintableString(value) ? { printableString: value } : { utf8String: value };
}

/**
 * Built from attributes, never by pasting text into "CN=…": a name such as
 * `Bank, O=Evil` must stay one CN value, not become two attributes.
 */
export function distinguishedName(subject: SubjectName): x509.Name {
  requireNameField(subject?.commonName, 'commonName');
  // Most significant first, as RFC 5280 orders an RDNSequence: O=…, then CN=….
  const attributes: x509.JsonNameParams = [];
  if (subject.organization !== undefined) {
    requireNameField(subject.organization, 'organization');
    attributes.push({ O: [attributeValue(subject.organization)] });
  }
  attributes.push({ CN: [attributeValue(subject.commonName)] });
  return new x509.Name(attributes);
}
