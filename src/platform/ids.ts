import { randomBytes, randomUUID } from 'node:crypto';

/** Randomness is injected so that tests can make it repeatable. */
export interface IdGenerator {
  /** A random UUID for a new record. */
  uuid(): string;
  /** A URL-safe random token of `bytes` bytes of entropy. */
  token(bytes?: number): string;
}

export const randomIds: IdGenerator = {
  uuid: () => randomUUID(),
  token: (bytes = 32) => randomBytes(bytes).toString('base64url'),
};
