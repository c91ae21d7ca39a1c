import { describe, expect, it } from 'vitest';
import { CryptoError } from './errors.js';

describe('CryptoError', () => {
  it('is an Error with a stable code and its own name', () => {
    const error = new CryptoError('ERR_DECRYPT_FAILED', 'decryption failed');
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ERR_DECRYPT_FAILED');
    expect(error.name).toBe('CryptoError');
    expect(String(error)).toBe('CryptoError: decryption failed');
  });
});
