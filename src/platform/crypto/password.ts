import { hash, parseOptions, verify, type Algorithm, type Version } from '@node-rs/argon2';

// The package declares these as ambient const enums, which isolatedModules
// cannot inline; the numeric values are part of its stable binding API.
const ARGON2ID = 2 as Algorithm;
const V0X13 = 1 as Version;

/**
 * OWASP Password Storage Cheat Sheet, argon2id option 2 (m=19 MiB, t=2, p=1):
 * the lowest-memory recommended setting, chosen because the servers have two
 * cores and a login must not starve request handling. Changing any value makes
 * `needsRehash` return true for existing hashes, which are upgraded on the
 * user's next successful login.
 */
export const PASSWORD_HASH_PARAMETERS = Object.freeze({
  algorithm: 'argon2id',
  memoryCostKiB: 19456,
  timeCost: 2,
  parallelism: 1,
  outputLength: 32,
  saltLength: 16,
} as const);

const options = {
  algorithm: ARGON2ID,
  version: V0X13,
  memoryCost: PASSWORD_HASH_PARAMETERS.memoryCostKiB,
  timeCost: PASSWORD_HASH_PARAMETERS.timeCost,
  parallelism: PASSWORD_HASH_PARAMETERS.parallelism,
  outputLen: PASSWORD_HASH_PARAMETERS.outputLength,
};

/**
 * The same word typed on different keyboards can arrive as different code
 * points (Cyrillic "й" is U+0439 precomposed, or "и" + U+0306 combining breve
 * on some input methods). NIST SP 800-63B asks verifiers to normalise so that
 * a user is not locked out by their device. Changing this form would
 * invalidate every stored hash, so it is fixed here.
 */
function normalise(plain: string): string {
  return plain.normalize('NFKC');
}

function requirePassword(plain: unknown): asserts plain is string {
  if (typeof plain !== 'string') throw new TypeError('password must be a string');
}

/** Returns a PHC string (`$argon2id$v=19$m=...`) with its own random salt. */
export async function hashPassword(plain: string): Promise<string> {
  requirePassword(plain);
  return hash(normalise(plain), options);
}

/**
 * A hash of a random, discarded password, made with PASSWORD_HASH_PARAMETERS.
 * Hard-coded rather than computed at start-up so that importing this module
 * costs nothing; a test fails if it drifts from the parameters.
 */
export const DUMMY_PASSWORD_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$9s9jMRulMHT3Ihxi8PEQOA$vaD5gM5k2+tDRirr3I+1VSX7hjz8vmKMZgca2ZOJYVM';

/**
 * Spends the same time as verifying a real user's password and always returns
 * false. Call it when the login name is unknown, so that response time does
 * not reveal which accounts exist.
 */
export async function verifyAgainstDummy(plain: string): Promise<false> {
  requirePassword(plain);
  try {
    await verify(DUMMY_PASSWORD_HASH, normalise(plain));
  } catch {
    // Nothing to report: the answer is false whatever happened.
  }
  return false;
}

/**
 * False for a wrong password and for a stored hash that is missing or
 * malformed: a damaged row must look like a failed login, not a server error
 * that tells the caller the account exists.
 */
export async function verifyPassword(storedHash: string, plain: string): Promise<boolean> {
  requirePassword(plain);
  if (typeof storedHash !== 'string' || !storedHash.startsWith('$argon2')) {
    return verifyAgainstDummy(plain);
  }
  try {
    return await verify(storedHash, normalise(plain));
  } catch {
    // A malformed hash fails fast inside argon2; pay the full cost anyway so
    // that these accounts are not distinguishable by timing.
    return verifyAgainstDummy(plain);
  }
}

/**
 * True when the hash was made with other parameters than the current ones.
 * Rehash with the plain password right after a successful verifyPassword.
 * A malformed hash also reports true, since it should not be kept.
 */
export function needsRehash(storedHash: string): boolean {
  if (typeof storedHash !== 'string') return true;
  let parsed;
  try {
    parsed = parseOptions(storedHash);
  } catch {
    return true;
  }
  return (
    parsed.algorithm !== ARGON2ID ||
    parsed.version !== V0X13 ||
    parsed.memoryCost !== options.memoryCost ||
    parsed.timeCost !== options.timeCost ||
    parsed.parallelism !== options.parallelism ||
    parsed.outputLen !== options.outputLen ||
    parsed.saltLen < PASSWORD_HASH_PARAMETERS.saltLength
  );
}
