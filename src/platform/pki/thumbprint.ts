import { createHash, X509Certificate } from 'node:crypto';
import { PkiError } from './errors.js';
import { decodeSinglePem } from './pem.js';

/*
 * RFC 8705 binds an access token to the client certificate by putting
 * `cnf: { "x5t#S256": <thumbprint> }` in the token; the resource server then
 * compares it with the certificate of the TLS connection the token arrived
 * on. The thumbprint is base64url (no padding) of SHA-256 over the DER of the
 * whole certificate, so the same function serves both sides.
 */

function sha256Base64Url(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * The `x5t#S256` value of a certificate given as PEM (exactly one block) or
 * DER. The input is parsed first, so a truncated or foreign blob is refused
 * (ERR_CERT_INVALID) instead of yielding a hash that matches nothing.
 */
export function certificateThumbprint(certPemOrDer: string | Uint8Array): string {
  const der =
    typeof certPemOrDer === 'string'
      ? decodeSinglePem(certPemOrDer, 'CERTIFICATE', 'ERR_CERT_INVALID', 'certificate')
      : certPemOrDer;
  if (!(der instanceof Uint8Array)) {
    throw new TypeError('certificate must be a PEM string or DER bytes');
  }
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(der);
  } catch (error) {
    throw new PkiError('ERR_CERT_INVALID', 'certificate does not parse', { cause: error });
  }
  // Hash the re-serialized DER, which is exactly the input for DER, and also
  // ignores trailing bytes after the certificate that a lenient parser skipped.
  return sha256Base64Url(parsed.raw);
}

/**
 * The `x5t#S256` value of the client certificate of a TLS connection:
 * `socket.getPeerCertificate().raw` is the DER Node already parsed during the
 * handshake, so hashing it is all that is left (no second parse per request).
 */
export function thumbprintFromPeerCertificate(raw: Buffer): string {
  if (!Buffer.isBuffer(raw) || raw.length === 0) {
    throw new TypeError('peer certificate raw must be a non-empty Buffer');
  }
  return sha256Base64Url(raw);
}
