export { CryptoError, type CryptoErrorCode } from './errors.js';
export {
  DUMMY_PASSWORD_HASH,
  PASSWORD_HASH_PARAMETERS,
  hashPassword,
  needsRehash,
  verifyAgainstDummy,
  verifyPassword,
} from './password.js';
export {
  KEY_LENGTH,
  memoryKeyring,
  type KeyEncryptionKeyring,
  type MemoryKeyring,
} from './key-encryption-key.js';
export {
  KEK_FILE_FORMAT,
  LIVE_KEYRING_RECHECK_MS,
  addKeyVersion,
  listKeyVersions,
  openFileKeyring,
  openLiveFileKeyring,
  removeKeyVersions,
  type KekFileOptions,
  type LiveKeyring,
  type LiveKeyringOptions,
} from './kek-file.js';
export type { Plaintext } from './aead.js';
export { createSealer, recordAad, type Sealer } from './envelope.js';
export {
  createSubjectKey,
  openJsonWithKey,
  openTextWithKey,
  openWithKey,
  sealWithKey,
  unwrapSubjectKey,
  wrapSubjectKey,
} from './subject-key.js';
export {
  parseKeySealed,
  parseSealed,
  serializeSealed,
  type KeySealedRecord,
  type SealedRecord,
  type WrappedKey,
} from './sealed-format.js';
export { KEYED_HASH_MIN_KEY_LENGTH, keyedHash, timingSafeEqualString } from './keyed-hash.js';
