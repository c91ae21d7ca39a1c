import { describe, expect, it } from 'vitest';
import { PkiError } from './errors.js';

describe('PkiError', () => {
  it('is an Error with a stable code, its own name and an optional cause', () => {
    const cause = new Error('inner');
    const error = new PkiError('ERR_CSR_INVALID', 'CSR does not parse', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ERR_CSR_INVALID');
    expect(error.name).toBe('PkiError');
    expect(error.cause).toBe(cause);
    expect(String(error)).toBe('PkiError: CSR does not parse');
  });
});
