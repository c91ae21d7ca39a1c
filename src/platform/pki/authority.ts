import { randomBytes, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { systemClock, type Clock } from '../clock.js';
import { verifyCertificateSigningRequest } from './csr.js';
import { PkiError } from './errors.js';
import {
  exportPrivateKeyPem,
  generateEs256KeyPair,
  parseEs256PrivateKey,
  SIGNING_ALGORITHM,
  toSigningKey,
} from './keys.js';
import { distinguishedName, type SubjectName } from './names.js';
import { decodeSinglePem } from './pem.js';
import { certificateThumbprint } from './thumbprint.js';
import { x509 } from './x509.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_VALIDITY_DAYS = 100 * 365;

/*
 * notBefore is set a little in the past: a partner whose clock runs a few
 * minutes behind ours would otherwise reject a certificate fresh from
 * `partner add` as "not yet valid".
 */
const BACKDATE_MS = 5 * 60 * 1000;

function requireValidityDays(days: unknown): asserts days is number {
  if (typeof days !== 'number' || !Number.isSafeInteger(days) || days < 1) {
    throw new TypeError('validityDays must be a positive integer');
  }
  if (days > MAX_VALIDITY_DAYS) {
    throw new TypeError(`validityDays must be at most ${MAX_VALIDITY_DAYS}`);
  }
}

function requireClock(clock: unknown): asserts clock is Clock {
  if (typeof (clock as Clock | undefined)?.now !== 'function') {
    throw new TypeError('clock must have a now() method');
  }
}

/**
 * 128 bits from the CSPRNG behind a 0x01 octet: the DER INTEGER stays
 * positive and always 17 octets long whatever the random bits are, so serials
 * print the same way in OpenSSL, Node and here (no sign byte, no stripped
 * leading zeros). Unpredictable serials are what keeps a chosen-prefix
 * collision on the signature from being practical (CA/B Forum asks for 64).
 */
function randomSerialNumber(): string {
  return `01${randomBytes(16).toString('hex')}`;
}

export interface IssuedKeyPair {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
}

export interface IssuedClientCertificate {
  certPem: string;
  /** Lowercase hex, as `peerCertificateOf` reports it. */
  serialNumber: string;
  /** RFC 8705 `x5t#S256`: base64url SHA-256 of the DER. */
  thumbprint: string;
}

export interface ServerCertificateRequest {
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  validityDays: number;
}

export interface ClientCertificateRequest {
  csrPem: string;
  validityDays: number;
  /**
   * Overrides the subject of the CSR. The CSR's own subject is whatever the
   * requester typed; pass the partner's registered name to certify that
   * instead. Either way, authorization binds to the thumbprint, not the name.
   */
  subject?: SubjectName;
}

export interface CertificateAuthority {
  readonly certPem: string;
  /** The CA certificate's notAfter; nothing it issues outlives it. */
  readonly notAfter: Date;
  issueServerCertificate(request: ServerCertificateRequest): Promise<IssuedKeyPair>;
  issueClientCertificate(request: ClientCertificateRequest): Promise<IssuedClientCertificate>;
}

export interface CreateCertificateAuthorityOptions {
  commonName: string;
  organization?: string;
  validityDays: number;
  clock?: Clock;
}

/**
 * A fresh self-signed root with a new P-256 key. basicConstraints is critical
 * so that a verifier that does not understand it refuses the certificate
 * rather than treating a CA as an ordinary leaf; pathLen 0 because this CA
 * signs leaves only, never intermediate CAs.
 */
export async function createCertificateAuthority(
  options: CreateCertificateAuthorityOptions,
): Promise<IssuedKeyPair> {
  const { validityDays, clock = systemClock } = options;
  requireValidityDays(validityDays);
  requireClock(clock);
  const name = distinguishedName(options);
  const keys = await generateEs256KeyPair();
  const now = clock.now().getTime();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityDays * DAY_MS),
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export interface LoadCertificateAuthorityOptions {
  /** Sets notBefore/notAfter of issued certificates. */
  clock?: Clock;
}

/** Checks that the pair is a CA we can sign with; ERR_CA_INVALID otherwise. */
function parseAuthority(certPem: unknown, keyPem: unknown) {
  const der = decodeSinglePem(certPem, 'CERTIFICATE', 'ERR_CA_INVALID', 'CA certificate');
  let cert: x509.X509Certificate;
  let nodeCert: NodeX509Certificate;
  try {
    cert = new x509.X509Certificate(der);
    nodeCert = new NodeX509Certificate(der);
  } catch (error) {
    throw new PkiError('ERR_CA_INVALID', 'CA certificate does not parse', { cause: error });
  }
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new PkiError('ERR_CA_INVALID', 'certificate is not a CA (basicConstraints CA:false)');
  }
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new PkiError('ERR_CA_INVALID', 'CA certificate lacks the keyCertSign key usage');
  }
  const key = parseEs256PrivateKey(keyPem, 'ERR_CA_INVALID', 'CA private key');
  if (!nodeCert.checkPrivateKey(key)) {
    throw new PkiError('ERR_CA_INVALID', 'CA private key does not belong to the CA certificate');
  }
  return { cert, key };
}

/**
 * Opens an existing CA for issuing. Refuses (ERR_CA_INVALID) a certificate
 * that is not a CA, a key that is not P-256, and a key that does not match:
 * certificates signed by the wrong key would fail only later, at a partner's
 * handshake, far from the cause.
 */
export async function loadCertificateAuthority(
  certPem: string,
  keyPem: string,
  options: LoadCertificateAuthorityOptions = {},
): Promise<CertificateAuthority> {
  const { clock = systemClock } = options;
  requireClock(clock);
  const { cert: caCert, key } = parseAuthority(certPem, keyPem);
  const signingKey = await toSigningKey(key);
  const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  // Reuse the CA's own key id so that the AKI matches its SKI byte for byte,
  // even for a CA made elsewhere with another key-id method.
  const authorityKeyIdentifier = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey);

  /** notBefore/notAfter for a new leaf, refusing when the CA itself is not valid. */
  function validity(validityDays: number): { notBefore: Date; notAfter: Date } {
    requireValidityDays(validityDays);
    const now = clock.now().getTime();
    if (now < caCert.notBefore.getTime() || now >= caCert.notAfter.getTime()) {
      throw new PkiError(
        'ERR_CA_EXPIRED',
        `CA certificate is valid from ${caCert.notBefore.toISOString()} to ` +
          `${caCert.notAfter.toISOString()}; it cannot issue at ${new Date(now).toISOString()}`,
      );
    }
    // Capped at the CA's end: a chain is dead when its root is, so a later
    // date would only mislead whoever reads the leaf.
    const notAfter = Math.min(now + validityDays * DAY_MS, caCert.notAfter.getTime());
    const notBefore = Math.max(now - BACKDATE_MS, caCert.notBefore.getTime());
    return { notBefore: new Date(notBefore), notAfter: new Date(notAfter) };
  }

  async function sign(
    subject: x509.Name,
    publicKey: x509.PublicKey | CryptoKey,
    validityDays: number,
    extensions: x509.Extension[],
  ): Promise<x509.X509Certificate> {
    return x509.X509CertificateGenerator.create({
      serialNumber: randomSerialNumber(),
      subject,
      issuer: caCert.subjectName,
      ...validity(validityDays),
      publicKey,
      signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        // Critical CA:false: a leaf must never be usable to sign other certificates.
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        authorityKeyIdentifier,
      ],
    });
  }

  return {
    certPem: caCert.toString('pem'),
    notAfter: caCert.notAfter,

    async issueServerCertificate({ dnsNames = [], ipAddresses = [], validityDays }) {
      const names = serverNames(dnsNames, ipAddresses);
      const keys = await generateEs256KeyPair();
      const cert = await sign(
        distinguishedName({ commonName: dnsNames[0] ?? ipAddresses[0]! }),
        keys.publicKey,
        validityDays,
        [
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(names),
        ],
      );
      return { certPem: cert.toString('pem'), keyPem: await exportPrivateKeyPem(keys.privateKey) };
    },

    async issueClientCertificate({ csrPem, validityDays, subject }) {
      requireValidityDays(validityDays);
      const csr = await verifyCertificateSigningRequest(csrPem);
      const subjectName = subject === undefined ? csr.subjectName : distinguishedName(subject);
      if (subjectName.toJSON().length === 0) {
        throw new PkiError('ERR_CSR_INVALID', 'CSR has an empty subject and none was given');
      }
      const cert = await sign(subjectName, csr.publicKey, validityDays, [
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ]);
      const certPem = cert.toString('pem');
      return {
        certPem,
        serialNumber: cert.serialNumber.toLowerCase(),
        thumbprint: certificateThumbprint(certPem),
      };
    },
  };
}

// A DNS name as it may appear in a SAN: letters, digits, hyphens, dots; no wildcard.
const DNS_NAME =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function serverNames(
  dnsNames: readonly string[],
  ipAddresses: readonly string[],
): x509.JsonGeneralNames {
  if (!Array.isArray(dnsNames) || !Array.isArray(ipAddresses)) {
    throw new TypeError('dnsNames and ipAddresses must be arrays');
  }
  if (dnsNames.length + ipAddresses.length === 0) {
    throw new TypeError('a server certificate needs at least one DNS name or IP address');
  }
  for (const name of dnsNames) {
    if (typeof name !== 'string' || !DNS_NAME.test(name)) {
      throw new TypeError(`not a DNS name: ${JSON.stringify(name)}`);
    }
  }
  for (const ip of ipAddresses) {
    if (typeof ip !== 'string' || isIP(ip) === 0) {
      throw new TypeError(`not an IP address: ${JSON.stringify(ip)}`);
    }
  }
  return [
    ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];
}
