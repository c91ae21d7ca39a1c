/*
 * The partner listener: the separate port on which banks' servers call the
 * portal's partner API with mutual TLS (see ../pki for the certificates).
 *
 * - TLS 1.3 only, with its three AEAD suites. Partners are servers we
 *   onboard, so no legacy client needs 1.2; 1.3 gives forward secrecy
 *   always, no renegotiation, and encrypts the client certificate, which 1.2
 *   sends in the clear.
 * - A client certificate from our CA (`ca` replaces the public roots) is
 *   required and checked in the handshake itself: no handler runs for a
 *   client without one, with an expired one, one from another CA, or one
 *   without the clientAuth purpose.
 * - The TLS check authenticates, it does not authorize. Handlers take the
 *   certificate's RFC 8705 `x5t#S256` thumbprint from `peerCertificateOf`
 *   and compare it with the partner's registered certificate and with the
 *   `cnf` claim of the access token presented on the same connection, which
 *   is what makes the token useless to anyone without the private key.
 */
export {
  TLS13_CIPHER_SUITES,
  createMtlsServerOptions,
  type MtlsServerMaterial,
} from './server-options.js';
export { peerCertificateOf, type PeerCertificateInfo } from './peer.js';
