import { createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from './errors.js';
import { exportPrivateKeyPem, generateEs256KeyPair, SIGNING_ALGORITHM } from './keys.js';
import { distinguishedName, type SubjectName } from './names.js';
import { decodeSinglePem } from './pem.js';
import { x509 } from './x509.js';

/** What a partner runs on its own side: the private key never leaves it. */
export async function createCertificateSigningRequest(
  subject: SubjectName,
): Promise<{ csrPem: string; keyPem: string }> {
  const name = distinguishedName(subject);
  const keys = await generateEs256KeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return { csrPem: csr.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/*
 * Keys we certify: EC P-256 (what we hand out ourselves) and RSA of 2048 to
 * 8192 bits (what a bank's existing HSM may insist on). RSA below 2048 is
 * breakable; above 8192 it only makes every handshake slow. Other curves and
 * Ed25519 are refused too, since not every TLS 1.3 stack a partner runs
 * accepts them for client authentication.
 */
const RSA_MIN_BITS = 2048;
const RSA_MAX_BITS = 8192;

function checkKeyStrength(key: KeyObject): void {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return;
  if (key.asymmetricKeyType === 'rsa') {
    const bits = details?.modulusLength ?? 0;
    if (bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS) return;
    throw new PkiError(
      'ERR_CSR_KEY_WEAK',
      `CSR has an RSA key of ${bits} bits; ${RSA_MIN_BITS} to ${RSA_MAX_BITS} bits are accepted`,
    );
  }
  const curve = details?.namedCurve ? ` (${details.namedCurve})` : '';
  throw new PkiError(
    'ERR_CSR_KEY_WEAK',
    `CSR has a ${key.asymmetricKeyType ?? 'unknown'}${curve} key; only EC P-256 and RSA keys are accepted`,
  );
}

export interface VerifiedCsr {
  subjectName: x509.Name;
  publicKey: x509.PublicKey;
}

/**
 * Parses a partner's CSR and proves it was signed by the private key of the
 * public key inside it (proof of possession). Without that check anyone could
 * submit someone else's public key and get a certificate naming them.
 *
 * Only the subject and the public key are taken from the CSR. Requested
 * extensions (a CA flag, extra SANs, key usages) are ignored on purpose: the
 * CA decides what a certificate may do, never the requester.
 */
export async function verifyCertificateSigningRequest(csrPem: unknown): Promise<VerifiedCsr> {
  const der = decodeSinglePem(csrPem, 'CERTIFICATE REQUEST', 'ERR_CSR_INVALID', 'CSR');
  let csr: x509.Pkcs10CertificateRequest;
  let key: KeyObject;
  try {
    csr = new x509.Pkcs10CertificateRequest(der);
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (error) {
    throw new PkiError('ERR_CSR_INVALID', 'CSR does not parse', { cause: error });
  }
  // Strength first: there is no point verifying a signature made with a toy key,
  // and a weak key is the more useful message for the partner.
  checkKeyStrength(key);
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch (error) {
    // An unsupported signature algorithm or a malformed signature value.
    throw new PkiError('ERR_CSR_INVALID', 'CSR signature cannot be checked', { cause: error });
  }
  if (!valid) {
    throw new PkiError('ERR_CSR_INVALID', 'CSR signature does not match its public key');
  }
  return { subjectName: csr.subjectName, publicKey: csr.publicKey };
}
