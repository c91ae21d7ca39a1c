import { describe, expect, it } from 'vitest';
import {
  DatabaseError,
  isDatabaseError,
  isUniqueViolation,
  redactDatabaseUrl,
  sqlState,
} from './errors.js';

describe('redactDatabaseUrl', () => {
  it('hides the password and keeps the rest', () => {
    expect(
      redactDatabaseUrl('postgres://soglasie:S3cret@db.example:5433/portal?sslmode=require'),
    ).toBe('postgres://soglasie:***@db.example:5433/portal?sslmode=require');
  });
  it('hides password query parameters', () => {
    const out = redactDatabaseUrl('postgres://db/portal?user=a&password=S3cret');
    expect(out).not.toContain('S3cret');
    expect(out).toContain('password=***');
  });
  it('leaves a URL without a password alone', () => {
    expect(redactDatabaseUrl('postgres://postgres@127.0.0.1:5432/postgres')).toBe(
      'postgres://postgres@127.0.0.1:5432/postgres',
    );
  });
  it('never echoes something that is not a URL', () => {
    expect(redactDatabaseUrl('user:S3cret@host/db')).not.toContain('S3cret');
  });
});

describe('error helpers', () => {
  it('recognise SQLSTATEs and our codes', () => {
    const unique = Object.assign(new Error('duplicate key'), {
      code: '23505',
      constraint: 'citizens_pkey',
    });
    expect(sqlState(unique)).toBe('23505');
    expect(isUniqueViolation(unique)).toBe(true);
    expect(isUniqueViolation(unique, 'citizens_pkey')).toBe(true);
    expect(isUniqueViolation(unique, 'other')).toBe(false);
    expect(
      sqlState(Object.assign(new Error('x'), { code: 'EPERM', syscall: 'open' })),
    ).toBeUndefined();
    const ours = new DatabaseError('ERR_DB_BUSY', 'busy');
    expect(isDatabaseError(ours, 'ERR_DB_BUSY')).toBe(true);
    expect(isDatabaseError(ours, 'ERR_DB_MIGRATION')).toBe(false);
    expect(ours.name).toBe('DatabaseError');
  });
});
