import { createHash, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, loadCertificateAuthority } from './authority.js';
import { createCertificateSigningRequest } from './csr.js';
import { PkiError } from './errors.js';
import { certificateThumbprint, thumbprintFromPeerCertificate } from './thumbprint.js';

let certPem: string;
let issuedThumbprint: string;
let expected: string;

beforeAll(async () => {
  const made = await createCertificateAuthority({ commonName: 'Test CA', validityDays: 30 });
  const ca = await loadCertificateAuthority(made.certPem, made.keyPem);
  const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
  const issued = await ca.issueClientCertificate({ csrPem, validityDays: 1 });
  certPem = issued.certPem;
  issuedThumbprint = issued.thumbprint;
  // Computed independently: OpenSSL's DER (through Node), SHA-256, base64url.
  expected = createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
});

describe('certificateThumbprint (RFC 8705 x5t#S256)', () => {
  it('is the base64url SHA-256 of the DER, from PEM or from DER', () => {
    expect(certificateThumbprint(certPem)).toBe(expected);
    expect(certificateThumbprint(new X509Certificate(certPem).raw)).toBe(expected);
    expect(certificateThumbprint(new Uint8Array(new X509Certificate(certPem).raw))).toBe(expected);
    expect(expected).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 bytes, no padding
  });

  it('is what issueClientCertificate reports', () => {
    expect(issuedThumbprint).toBe(expected);
  });

  it('ignores PEM line endings', () => {
    expect(certificateThumbprint(certPem.replace(/\n/g, '\r\n'))).toBe(expected);
  });

  it('refuses what is not exactly one certificate', () => {
    for (const input of ['', 'junk', certPem + certPem, Buffer.from('junk')]) {
      let caught: unknown;
      try {
        certificateThumbprint(input);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(PkiError);
      expect((caught as PkiError).code).toBe('ERR_CERT_INVALID');
    }
  });
});

describe('thumbprintFromPeerCertificate', () => {
  it('matches certificateThumbprint for the raw DER Node exposes', () => {
    expect(thumbprintFromPeerCertificate(new X509Certificate(certPem).raw)).toBe(expected);
  });

  it('refuses an empty buffer rather than hashing nothing', () => {
    expect(() => thumbprintFromPeerCertificate(Buffer.alloc(0))).toThrow(TypeError);
  });
});
