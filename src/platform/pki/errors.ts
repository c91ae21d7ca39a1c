/**
 * Codes are the stable contract; messages are for humans and may change.
 * Callers branch on `code`, never on message text.
 */
export type PkiErrorCode =
  /** A CSR that does not parse or whose self-signature does not verify. */
  | 'ERR_CSR_INVALID'
  /** A CSR for a key we do not accept: anything but EC P-256 or RSA 2048..8192. */
  | 'ERR_CSR_KEY_WEAK'
  /** CA material that is not a usable CA (not a CA certificate, key does not match). */
  | 'ERR_CA_INVALID'
  /** The CA is outside its validity period at issuance time. */
  | 'ERR_CA_EXPIRED'
  /** A certificate (PEM or DER) that does not parse. */
  | 'ERR_CERT_INVALID'
  /** The PKI directory lacks a file; the operator has to run `soglasie pki init`. */
  | 'ERR_PKI_MISSING'
  /** A PKI file exists but is unusable, or the set is inconsistent. */
  | 'ERR_PKI_CORRUPT'
  /** A private key file that users other than its owner can read. */
  | 'ERR_PKI_PERMISSIONS'
  /** A certificate in the PKI directory has expired or is not yet valid. */
  | 'ERR_PKI_EXPIRED'
  /** Another `pki init` holds the lock on the directory. */
  | 'ERR_PKI_LOCKED';

/**
 * Thrown when untrusted input (a partner's CSR, files on disk) is bad.
 * Programming mistakes (a validity of -3 days, an empty name) throw TypeError
 * instead, so that the two are never confused in error handling.
 */
export class PkiError extends Error {
  override readonly name = 'PkiError';
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
