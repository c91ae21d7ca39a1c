import type { ServerOptions } from 'node:https';

/*
 * TLS 1.3 only. Partners are a handful of banks' servers that we configure
 * together, not browsers in the wild, so there is no legacy client to keep:
 * 1.3 has only AEAD suites and forward-secret key exchange, encrypts the
 * client certificate (1.2 sends it in the clear, naming the bank to anyone on
 * the path), and has no renegotiation.
 */

/**
 * The three AEAD suites of TLS 1.3 we allow, strongest first. They equal
 * OpenSSL's default today; naming them keeps it so if a build or an
 * `--tls-cipher-list` flag changes the default, and keeps out CCM suites.
 *
 * Node has no separate `ciphersuites` option (unlike OpenSSL's API): TLS 1.3
 * suites go in `ciphers`, where Node routes every `TLS_…` name to
 * SSL_CTX_set_ciphersuites. An unknown option key would be silently ignored.
 */
export const TLS13_CIPHER_SUITES =
  'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';

export interface MtlsServerMaterial {
  /** CA certificate(s) whose client certificates are accepted. */
  caPem: string;
  /** The listener's own certificate (chain) and private key. */
  certPem: string;
  keyPem: string;
}

function requirePem(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || !value.includes('-----BEGIN ')) {
    throw new TypeError(`${what} must be PEM text`);
  }
}

/**
 * Options for `https.createServer` on the partner listener: TLS 1.3 only, and
 * a client certificate issued by `caPem` is required. With
 * `rejectUnauthorized` the handshake itself fails for a missing, expired or
 * foreign certificate, or one without the clientAuth purpose, so no request
 * handler ever runs for such a client.
 *
 * Passing a TLS check is not authorization: handlers still look the
 * certificate's thumbprint up (`peerCertificateOf`) and compare it with the
 * partner record and the token's `cnf.x5t#S256` (RFC 8705).
 */
export function createMtlsServerOptions(material: MtlsServerMaterial): ServerOptions {
  requirePem(material?.caPem, 'caPem');
  requirePem(material.certPem, 'certPem');
  requirePem(material.keyPem, 'keyPem');
  return {
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS13_CIPHER_SUITES,
    // `ca` replaces Node's bundled public roots: a certificate from a public
    // CA must not authenticate anyone here, only ours do.
    ca: material.caPem,
    cert: material.certPem,
    key: material.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
  };
}
