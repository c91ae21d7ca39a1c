import { createPrivateKey, type KeyObject } from 'node:crypto';
import { PkiError, type PkiErrorCode } from './errors.js';
import { encodePem } from './pem.js';

/*
 * Every key this toolkit makes is ECDSA P-256 signing with SHA-256 (JOSE
 * "ES256"): the one curve every TLS stack, HSM and the FAPI 2.0 algorithm list
 * agree on, with small keys and fast handshakes.
 */
export const EC_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Extractable, because the private key has to be written out as PKCS#8. */
export async function generateEs256KeyPair(): Promise<CryptoKeyPair> {
  return globalThis.crypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
}

/** PKCS#8 ("BEGIN PRIVATE KEY"), the format Node's TLS and OpenSSL read. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await globalThis.crypto.subtle.exportKey('pkcs8', key);
  return encodePem(der, 'PRIVATE KEY');
}

/**
 * Parses a P-256 private key (PKCS#8, or SEC1 as older OpenSSL writes it).
 * Any other key is refused: a CA that silently signed with whatever it was
 * given would break the ES256-only rule without anyone noticing.
 */
export function parseEs256PrivateKey(pem: unknown, code: PkiErrorCode, what: string): KeyObject {
  if (typeof pem !== 'string') throw new PkiError(code, `${what} is not PEM text`);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (error) {
    // The cause is kept for debugging; the parser never quotes key bytes.
    throw new PkiError(code, `${what} is not a readable private key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new PkiError(code, `${what} is not an EC P-256 key`);
  }
  return key;
}

/** A non-extractable WebCrypto signing key: the CA key never leaves this object again. */
export async function toSigningKey(key: KeyObject): Promise<CryptoKey> {
  const pkcs8 = key.export({ format: 'der', type: 'pkcs8' });
  try {
    return await globalThis.crypto.subtle.importKey('pkcs8', pkcs8, EC_KEY_ALGORITHM, false, [
      'sign',
    ]);
  } finally {
    pkcs8.fill(0); // no copy of the CA key lingers in a buffer we own
  }
}
