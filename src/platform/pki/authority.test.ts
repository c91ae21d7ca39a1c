import { generateKeyPairSync, X509Certificate as NodeX509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../clock.js';
import {
  createCertificateAuthority,
  loadCertificateAuthority,
  type CertificateAuthority,
} from './authority.js';
import { createCertificateSigningRequest } from './csr.js';
import { PkiError } from './errors.js';
import { x509 } from './x509.js';

const DAY = 24 * 60 * 60 * 1000;

async function failure(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PkiError) return error;
    throw error;
  }
  throw new Error('expected a PkiError, got success');
}

let caPem: { certPem: string; keyPem: string };
let ca: CertificateAuthority;
let caCert: x509.X509Certificate;

beforeAll(async () => {
  caPem = await createCertificateAuthority({ commonName: 'Test CA', validityDays: 365 });
  ca = await loadCertificateAuthority(caPem.certPem, caPem.keyPem);
  caCert = new x509.X509Certificate(caPem.certPem);
});

describe('createCertificateAuthority', () => {
  it('makes a self-signed P-256 CA with critical basicConstraints and keyCertSign + cRLSign', async () => {
    expect(await caCert.isSelfSigned()).toBe(true);
    expect(caCert.subject).toBe('CN=Test CA');
    expect(caCert.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(caCert.signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-256' } });
    const constraints = caCert.getExtension(x509.BasicConstraintsExtension);
    expect(constraints).toMatchObject({ ca: true, critical: true });
    const usage = caCert.getExtension(x509.KeyUsagesExtension);
    expect(usage?.usages).toBe(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    expect(caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId).toMatch(/^[0-9a-f]+$/);
  });

  it('writes the key as PKCS#8 PEM', () => {
    expect(caPem.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('takes its validity from the clock, backdated five minutes for clock skew', async () => {
    const clock = manualClock('2026-12-01T09:00:00Z');
    const made = await createCertificateAuthority({ commonName: 'CA', validityDays: 10, clock });
    const cert = new x509.X509Certificate(made.certPem);
    expect(cert.notBefore.toISOString()).toBe('2026-12-01T08:55:00.000Z');
    expect(cert.notAfter.toISOString()).toBe('2026-12-11T09:00:00.000Z');
  });

  it('rejects nonsense parameters as programming errors', async () => {
    await expect(createCertificateAuthority({ commonName: '', validityDays: 1 })).rejects.toThrow(
      TypeError,
    );
    await expect(createCertificateAuthority({ commonName: 'CA', validityDays: 0 })).rejects.toThrow(
      TypeError,
    );
    await expect(
      createCertificateAuthority({ commonName: 'CA', validityDays: 1.5 }),
    ).rejects.toThrow(TypeError);
  });
});

describe('loadCertificateAuthority', () => {
  it('refuses a key that does not belong to the certificate', async () => {
    const other = await createCertificateAuthority({ commonName: 'Other', validityDays: 1 });
    const error = await failure(loadCertificateAuthority(caPem.certPem, other.keyPem));
    expect(error.code).toBe('ERR_CA_INVALID');
  });

  it('refuses a certificate that is not a CA', async () => {
    const leaf = await ca.issueServerCertificate({ dnsNames: ['localhost'], validityDays: 1 });
    const error = await failure(loadCertificateAuthority(leaf.certPem, leaf.keyPem));
    expect(error.code).toBe('ERR_CA_INVALID');
    expect(error.message).toMatch(/not a CA/);
  });

  it('refuses a key that is not P-256', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rsaPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const error = await failure(loadCertificateAuthority(caPem.certPem, rsaPem));
    expect(error.code).toBe('ERR_CA_INVALID');
  });

  it('refuses text that is not a certificate', async () => {
    expect((await failure(loadCertificateAuthority('hello', caPem.keyPem))).code).toBe(
      'ERR_CA_INVALID',
    );
    const twoCerts = caPem.certPem + caPem.certPem;
    expect((await failure(loadCertificateAuthority(twoCerts, caPem.keyPem))).code).toBe(
      'ERR_CA_INVALID',
    );
  });
});

describe('issueClientCertificate', () => {
  it('issues a certificate that chains to the CA, with clientAuth only and CA:false', async () => {
    const { csrPem } = await createCertificateSigningRequest({
      commonName: 'bank-1',
      organization: 'ПАО «Банк»',
    });
    const issued = await ca.issueClientCertificate({ csrPem, validityDays: 30 });
    const cert = new x509.X509Certificate(issued.certPem);

    expect(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true })).toBe(true);
    const chain = await new x509.X509ChainBuilder({ certificates: [caCert] }).build(cert);
    expect(chain.map((c) => c.subject)).toEqual(['O=ПАО «Банк», CN=bank-1', 'CN=Test CA']);
    // And OpenSSL agrees, through Node.
    const nodeCert = new NodeX509Certificate(issued.certPem);
    expect(nodeCert.checkIssued(new NodeX509Certificate(caPem.certPem))).toBe(true);

    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    expect(cert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({
      ca: false,
      critical: true,
    });
    expect(cert.getExtension(x509.KeyUsagesExtension)?.usages).toBe(
      x509.KeyUsageFlags.digitalSignature,
    );
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  });

  it('returns the serial as lowercase hex and a 128-bit random part that differs each time', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const serials = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const issued = await ca.issueClientCertificate({ csrPem, validityDays: 1 });
      expect(issued.serialNumber).toMatch(/^01[0-9a-f]{32}$/);
      expect(issued.serialNumber).toBe(new x509.X509Certificate(issued.certPem).serialNumber);
      serials.add(issued.serialNumber);
    }
    expect(serials.size).toBe(5);
  });

  it('ignores extensions the CSR asks for: the requester cannot make itself a CA', async () => {
    const keys = await globalThis.crypto.subtle.generateKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      false,
      ['sign', 'verify'],
    );
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=sneaky',
      keys,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'portal.example' }]),
      ],
    });
    const issued = await ca.issueClientCertificate({
      csrPem: csr.toString('pem'),
      validityDays: 1,
    });
    const cert = new x509.X509Certificate(issued.certPem);
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(cert.getExtension(x509.SubjectAlternativeNameExtension)).toBeNull();
  });

  it('uses the given subject instead of the one in the CSR', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'whatever I like' });
    const issued = await ca.issueClientCertificate({
      csrPem,
      validityDays: 1,
      subject: { commonName: 'partner-42', organization: 'Банк' },
    });
    expect(new x509.X509Certificate(issued.certPem).subject).toBe('O=Банк, CN=partner-42');
  });

  it('keeps any name as one attribute value, exactly as given', async () => {
    // Each of these is special in RFC 4514 text: a hex value, quotes, escapes, separators.
    for (const commonName of ['#0c0161', '"quoted"', 'a\\,b', 'Bank, O=Evil', 'a+CN=b', ' pad ']) {
      const { csrPem } = await createCertificateSigningRequest({ commonName });
      const issued = await ca.issueClientCertificate({ csrPem, validityDays: 1 });
      const cert = new x509.X509Certificate(issued.certPem);
      expect(cert.subjectName.getField('CN')).toEqual([commonName]);
      expect(cert.subjectName.toJSON()).toHaveLength(1);
    }
  });

  it('keeps any name as one attribute value (property)', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'x' });
    const printable = fc
      .string({ minLength: 1, maxLength: 64, unit: 'grapheme' })
      // eslint-disable-next-line no-control-regex
      .filter((s) => s.trim() !== '' && s.length <= 64 && !/[\u0000-\u001f\u007f]/.test(s));
    await fc.assert(
      fc.asyncProperty(printable, async (commonName) => {
        const issued = await ca.issueClientCertificate({
          csrPem,
          validityDays: 1,
          subject: { commonName },
        });
        const cert = new x509.X509Certificate(issued.certPem);
        expect(cert.subjectName.getField('CN')).toEqual([commonName]);
        expect(cert.subjectName.toJSON()).toHaveLength(1);
      }),
      { numRuns: 50 },
    );
  });

  it('sets validity from the clock and never past the CA', async () => {
    const clock = manualClock('2026-12-01T09:00:00Z');
    const made = await createCertificateAuthority({ commonName: 'CA', validityDays: 10, clock });
    const shortCa = await loadCertificateAuthority(made.certPem, made.keyPem, { clock });
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });

    clock.advance(DAY);
    const short = new x509.X509Certificate(
      (await shortCa.issueClientCertificate({ csrPem, validityDays: 2 })).certPem,
    );
    expect(short.notBefore.toISOString()).toBe('2026-12-02T08:55:00.000Z');
    expect(short.notAfter.toISOString()).toBe('2026-12-04T09:00:00.000Z');

    const long = new x509.X509Certificate(
      (await shortCa.issueClientCertificate({ csrPem, validityDays: 365 })).certPem,
    );
    expect(long.notAfter.toISOString()).toBe('2026-12-11T09:00:00.000Z');

    clock.advance(10 * DAY);
    const error = await failure(shortCa.issueClientCertificate({ csrPem, validityDays: 1 }));
    expect(error.code).toBe('ERR_CA_EXPIRED');
  });
});

describe('issueServerCertificate', () => {
  it('issues a serverAuth certificate for the given names with a fresh PKCS#8 key', async () => {
    const issued = await ca.issueServerCertificate({
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      validityDays: 30,
    });
    const cert = new NodeX509Certificate(issued.certPem);
    expect(cert.subjectAltName).toBe(
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIssued(new NodeX509Certificate(caPem.certPem))).toBe(true);
    expect(issued.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('refuses malformed names as programming errors', async () => {
    await expect(ca.issueServerCertificate({ validityDays: 1 })).rejects.toThrow(TypeError);
    await expect(
      ca.issueServerCertificate({ dnsNames: ['*.example'], validityDays: 1 }),
    ).rejects.toThrow(TypeError);
    await expect(
      ca.issueServerCertificate({ ipAddresses: ['300.1.1.1'], validityDays: 1 }),
    ).rejects.toThrow(TypeError);
  });
});
