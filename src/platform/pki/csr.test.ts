import { beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  loadCertificateAuthority,
  type CertificateAuthority,
} from './authority.js';
import { createCertificateSigningRequest, verifyCertificateSigningRequest } from './csr.js';
import { PkiError } from './errors.js';
import { encodePem } from './pem.js';
import { x509 } from './x509.js';

async function failure(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PkiError) return error;
    throw error;
  }
  throw new Error('expected a PkiError, got success');
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
}

async function csrWithKey(
  algorithm: RsaHashedKeyGenParams | EcKeyGenParams,
  signingAlgorithm: Algorithm | EcdsaParams,
  name = 'CN=partner',
): Promise<string> {
  const keys = (await globalThis.crypto.subtle.generateKey(algorithm, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys,
    signingAlgorithm,
  });
  return csr.toString('pem');
}

const rsa = (modulusLength: number): RsaHashedKeyGenParams => ({
  name: 'RSASSA-PKCS1-v1_5',
  modulusLength,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: 'SHA-256',
});

let ca: CertificateAuthority;

beforeAll(async () => {
  const made = await createCertificateAuthority({ commonName: 'Test CA', validityDays: 30 });
  ca = await loadCertificateAuthority(made.certPem, made.keyPem);
});

describe('createCertificateSigningRequest', () => {
  it('makes a self-signed P-256 CSR and a PKCS#8 key', async () => {
    const { csrPem, keyPem } = await createCertificateSigningRequest({
      commonName: 'bank-1',
      organization: 'Банк',
    });
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    expect(await csr.verify()).toBe(true);
    expect(csr.subject).toBe('O=Банк, CN=bank-1');
    expect(csr.publicKey.algorithm).toMatchObject({ name: 'ECDSA', namedCurve: 'P-256' });
    expect(keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });
});

describe('CSR checks before issuing', () => {
  it('refuses a CSR whose content was changed after signing', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const der = derOf(csrPem);
    const at = der.indexOf('bank-1');
    expect(at).toBeGreaterThan(0);
    der.write('bank-2', at); // same length, so it still parses
    const tampered = encodePem(der, 'CERTIFICATE REQUEST');
    expect(() => new x509.Pkcs10CertificateRequest(tampered)).not.toThrow();

    const error = await failure(ca.issueClientCertificate({ csrPem: tampered, validityDays: 1 }));
    expect(error.code).toBe('ERR_CSR_INVALID');
    expect(error.message).toMatch(/signature/);
  });

  it('refuses a CSR with a damaged signature', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const der = derOf(csrPem);
    der[der.length - 1]! ^= 0x01; // last byte of the signature's s value
    const error = await failure(
      ca.issueClientCertificate({
        csrPem: encodePem(der, 'CERTIFICATE REQUEST'),
        validityDays: 1,
      }),
    );
    expect(error.code).toBe('ERR_CSR_INVALID');
  });

  it('refuses what is not a CSR', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const notCsr = [
      '',
      'hello',
      csrPem.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'),
      csrPem + csrPem,
      encodePem(Buffer.from('not asn.1'), 'CERTIFICATE REQUEST'),
      csrPem.replace(/\n[A-Za-z]/, '\n!'),
      csrPem + ' '.repeat(70_000),
    ];
    for (const input of notCsr) {
      const error = await failure(ca.issueClientCertificate({ csrPem: input, validityDays: 1 }));
      expect(error.code).toBe('ERR_CSR_INVALID');
    }
  });

  it('refuses RSA below 2048 bits and keys other than P-256 or RSA', async () => {
    const weak = [
      await csrWithKey(rsa(1024), { name: 'RSASSA-PKCS1-v1_5' }),
      await csrWithKey({ name: 'ECDSA', namedCurve: 'P-384' }, { name: 'ECDSA', hash: 'SHA-384' }),
    ];
    for (const csrPem of weak) {
      const error = await failure(ca.issueClientCertificate({ csrPem, validityDays: 1 }));
      expect(error.code).toBe('ERR_CSR_KEY_WEAK');
    }
  });

  it('accepts an RSA 2048 key and certifies it with the ES256 CA signature', async () => {
    const csrPem = await csrWithKey(rsa(2048), { name: 'RSASSA-PKCS1-v1_5' });
    const issued = await ca.issueClientCertificate({ csrPem, validityDays: 1 });
    const cert = new x509.X509Certificate(issued.certPem);
    expect(cert.publicKey.algorithm.name).toBe('RSASSA-PKCS1-v1_5');
    expect(cert.signatureAlgorithm).toMatchObject({ name: 'ECDSA' });
  });

  it('refuses a CSR with an empty subject when no subject is given', async () => {
    const csrPem = await csrWithKey(
      { name: 'ECDSA', namedCurve: 'P-256' },
      { name: 'ECDSA', hash: 'SHA-256' },
      '',
    );
    expect((await failure(ca.issueClientCertificate({ csrPem, validityDays: 1 }))).code).toBe(
      'ERR_CSR_INVALID',
    );
    const issued = await ca.issueClientCertificate({
      csrPem,
      validityDays: 1,
      subject: { commonName: 'partner-7' },
    });
    expect(new x509.X509Certificate(issued.certPem).subject).toBe('CN=partner-7');
  });

  it('returns only the subject and the public key of a good CSR', async () => {
    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const verified = await verifyCertificateSigningRequest(csrPem);
    expect(verified.subjectName.toString()).toBe('CN=bank-1');
    expect(Object.keys(verified).sort()).toEqual(['publicKey', 'subjectName']);
  });
});
