/*
 * A small certificate authority for the partner channel: the bank's servers
 * call the portal's partner API over mutual TLS, and this folder makes and
 * checks the certificates for it.
 *
 * - Keys are ECDSA P-256, signatures ES256 (ECDSA with SHA-256), made with
 *   Node's WebCrypto: one algorithm that every TLS 1.3 stack, HSM and the
 *   FAPI 2.0 algorithm list (PS256/ES256/EdDSA) accept. Partners may bring
 *   RSA keys of 2048 bits or more in their CSRs; nothing weaker is certified.
 * - The CA signs leaves only (pathLen 0). Client certificates carry the
 *   clientAuth EKU and nothing else, so a partner's certificate cannot serve
 *   a TLS server or sign certificates; the CA ignores extensions requested in
 *   a CSR and checks the CSR's signature (proof of possession) before issuing.
 * - Trust in a partner is not "any certificate from our CA": RFC 8705 binds
 *   tokens and partner records to the certificate's `x5t#S256` thumbprint
 *   (base64url SHA-256 of the DER), which `certificateThumbprint` computes at
 *   registration and `thumbprintFromPeerCertificate` on each connection.
 * - `initPki`/`loadPki` keep the development CA and the listener certificate
 *   in a directory, with the same file rules as the KEK file (0600 keys,
 *   never overwritten, refused when readable by others).
 *
 * TLS settings for the listener live in ../mtls.
 */
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  createCertificateAuthority,
  loadCertificateAuthority,
  type CertificateAuthority,
  type ClientCertificateRequest,
  type CreateCertificateAuthorityOptions,
  type IssuedClientCertificate,
  type IssuedKeyPair,
  type LoadCertificateAuthorityOptions,
  type ServerCertificateRequest,
} from './authority.js';
export { createCertificateSigningRequest } from './csr.js';
export type { SubjectName } from './names.js';
export { certificateThumbprint, thumbprintFromPeerCertificate } from './thumbprint.js';
export {
  PKI_FILES,
  initPki,
  loadPki,
  type InitPkiOptions,
  type InitPkiResult,
  type Pki,
} from './files.js';
