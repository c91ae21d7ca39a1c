/**
 * Codes are the stable contract; messages are for humans and may change.
 * Callers branch on `code`, never on message text.
 */
export type CryptoErrorCode =
  | 'ERR_DECRYPT_FAILED'
  | 'ERR_SEALED_FORMAT'
  | 'ERR_PLAINTEXT_FORMAT'
  | 'ERR_KEK_UNKNOWN_VERSION'
  | 'ERR_KEK_FILE_CORRUPT'
  | 'ERR_KEK_FILE_PERMISSIONS'
  | 'ERR_KEK_FILE_LOCKED';

/**
 * Thrown when untrusted input (stored ciphertext, a key file on disk) is bad.
 * Programming mistakes throw TypeError instead, so that the two are never
 * confused in error handling.
 */
export class CryptoError extends Error {
  override readonly name = 'CryptoError';
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/**
 * One message for every way decryption can fail, so that a caller relaying it
 * (or an attacker probing) learns nothing about which check rejected the input.
 */
export function decryptFailed(): CryptoError {
  return new CryptoError('ERR_DECRYPT_FAILED', 'decryption failed');
}
