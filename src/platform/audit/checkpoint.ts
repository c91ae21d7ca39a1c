import {
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { HASH_BYTES } from './merkle.js';

/**
 * Signed checkpoints of the audit log: a C2SP signed note (c2sp.org/signed-note) whose
 * text is a C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint) with one extension line for
 * the time, signed with Ed25519:
 *
 *   soglasie-portal/audit-log
 *   1024
 *   h2o0QQp1Yd3AEyj+KTaHS/Ge+GNOTlNmlomXiqGYCWI=
 *   time 2026-12-01T09:00:10.000Z
 *
 *   — soglasie-portal/audit-log AX0s7Y6h…base64(key id || signature)…
 *
 * The key id is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), the
 * signature covers the text (every line above the blank one, newline included), and the
 * verifier key reads `<name>+<key id hex>+<base64(0x01 || public key)>`, as in Go's
 * golang.org/x/mod/sumdb/note. See docs/audit-log.md.
 */
export const AUDIT_LOG_ORIGIN = 'soglasie-portal/audit-log';

const ED25519 = 0x01;
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const SIGNATURE_DASH = '\u2014';

export interface Checkpoint {
  origin: string;
  size: number;
  root: Buffer;
  time: Date;
}

export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
  /** `<name>+<key id hex>+<base64(0x01 || public key)>`. */
  verifierKey: string;
}

export interface NoteSigner extends NoteVerifier {
  sign(text: string): Buffer;
}

function keyId(name: string, rawPublicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, ED25519]))
    .update(rawPublicKey)
    .digest()
    .subarray(0, 4);
}

function checkName(name: string): void {
  if (!name || /[\s+]/u.test(name)) throw new Error(`bad note key name ${JSON.stringify(name)}`);
}

function verifierOf(name: string, publicKey: KeyObject): NoteVerifier {
  const raw = publicKey
    .export({ format: 'der', type: 'spki' })
    .subarray(SPKI_ED25519_PREFIX.length);
  const id = keyId(name, raw);
  return {
    name,
    keyId: id,
    publicKey,
    verifierKey: `${name}+${id.toString('hex')}+${Buffer.concat([Buffer.from([ED25519]), raw]).toString('base64')}`,
  };
}

/** An Ed25519 signer from a 32-byte seed (a service key, wrapped by the KEK at rest). */
export function checkpointSigner(seed: Buffer, name = AUDIT_LOG_ORIGIN): NoteSigner {
  checkName(name);
  if (seed.length !== 32) throw new Error('an Ed25519 seed has 32 bytes');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return {
    ...verifierOf(name, createPublicKey(privateKey)),
    sign: (text) => sign(null, Buffer.from(text, 'utf8'), privateKey),
  };
}

/** Parses a verifier key string `<name>+<key id hex>+<base64(0x01 || public key)>`. */
export function parseVerifierKey(text: string): NoteVerifier {
  // name+hash+key, where the base64 key may itself contain '+'.
  const [name, hex, ...key] = text.trim().split('+');
  const raw = Buffer.from(key.join('+'), 'base64');
  if (!name || !hex || raw.length !== 33 || raw[0] !== ED25519) {
    throw new Error('not an Ed25519 note verifier key');
  }
  checkName(name);
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, raw.subarray(1)]),
    format: 'der',
    type: 'spki',
  });
  const verifier = verifierOf(name, publicKey);
  if (verifier.keyId.toString('hex') !== hex) throw new Error('verifier key id does not match');
  return verifier;
}

/** The checkpoint text (the signed part of the note). */
export function checkpointText(c: Checkpoint): string {
  checkName(c.origin);
  if (!Number.isSafeInteger(c.size) || c.size < 0) throw new RangeError('bad tree size');
  if (c.root.length !== HASH_BYTES) throw new RangeError('bad root hash');
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\ntime ${c.time.toISOString()}\n`;
}

export function signCheckpoint(c: Checkpoint, signer: NoteSigner): string {
  const text = checkpointText(c);
  const signature = Buffer.concat([signer.keyId, signer.sign(text)]).toString('base64');
  return `${text}\n${SIGNATURE_DASH} ${signer.name} ${signature}\n`;
}

/** Strict parse of a checkpoint text; throws on anything else. */
export function parseCheckpointText(text: string): Checkpoint {
  const lines = text.split('\n');
  const [origin, size, root, time, end, ...rest] = lines;
  const parsedRoot = Buffer.from(root ?? '', 'base64');
  const at = time?.startsWith('time ') ? new Date(time.slice(5)) : undefined;
  if (
    rest.length ||
    end !== '' ||
    !origin ||
    !/^(0|[1-9][0-9]*)$/.test(size ?? '') ||
    parsedRoot.length !== HASH_BYTES ||
    parsedRoot.toString('base64') !== root ||
    !at ||
    Number.isNaN(at.getTime()) ||
    at.toISOString() !== time!.slice(5)
  ) {
    throw new Error('malformed checkpoint');
  }
  const n = Number(size);
  if (!Number.isSafeInteger(n)) throw new Error('malformed checkpoint');
  return { origin, size: n, root: parsedRoot, time: at };
}

/** The text of a signed note if a signature line by `verifier`'s key verifies; else throws. */
export function openNote(note: string, verifier: NoteVerifier): string {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new Error('malformed note');
  const text = note.slice(0, split + 1);
  const prefix = `${SIGNATURE_DASH} ${verifier.name} `;
  let verified = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(`${SIGNATURE_DASH} `)) throw new Error('malformed note signature line');
    if (!line.startsWith(prefix)) continue;
    const signature = Buffer.from(line.slice(prefix.length), 'base64');
    if (
      signature.length === 4 + 64 &&
      signature.subarray(0, 4).equals(verifier.keyId) &&
      verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, signature.subarray(4))
    ) {
      verified = true;
    }
  }
  if (!verified) throw new Error(`no valid signature by ${verifier.name}`);
  return text;
}

/**
 * Opens a signed checkpoint note with `verifier`: the checkpoint, if a signature line by
 * that key verifies and the origin is the key's name; otherwise throws.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): Checkpoint {
  const checkpoint = parseCheckpointText(openNote(note, verifier));
  if (checkpoint.origin !== verifier.name) throw new Error('checkpoint origin is not the key name');
  return checkpoint;
}

/** The signature line's base64 (key id || signature) of a note by `name`. */
export function noteSignature(note: string, name = AUDIT_LOG_ORIGIN): string | undefined {
  const prefix = `${SIGNATURE_DASH} ${name} `;
  return note
    .split('\n')
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length);
}
