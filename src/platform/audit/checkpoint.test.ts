import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_LOG_ORIGIN,
  checkpointSigner,
  checkpointText,
  noteSignature,
  openCheckpoint,
  openNote,
  parseCheckpointText,
  parseVerifierKey,
  signCheckpoint,
} from './checkpoint.js';

const checkpoint = {
  origin: AUDIT_LOG_ORIGIN,
  size: 1024,
  root: Buffer.alloc(32, 7),
  time: new Date('2026-12-01T09:00:10Z'),
};

describe('signed checkpoints (C2SP signed note + tlog-checkpoint)', () => {
  it('opens the example note of golang.org/x/mod/sumdb/note (the same note format)', () => {
    const verifier = parseVerifierKey(
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    );
    const note =
      'If you think cryptography is the answer to your problem,\n' +
      "then you don't know what your problem is.\n" +
      '\n' +
      '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
    expect(openNote(note, verifier)).toBe(
      "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n",
    );
    expect(() => openNote(note.replace('answer', 'question'), verifier)).toThrow(/signature/);
  });

  it('signs and opens a checkpoint; the text is the documented one', () => {
    const signer = checkpointSigner(randomBytes(32));
    const note = signCheckpoint(checkpoint, signer);
    expect(checkpointText(checkpoint)).toBe(
      `${AUDIT_LOG_ORIGIN}\n1024\n${Buffer.alloc(32, 7).toString('base64')}\ntime 2026-12-01T09:00:10.000Z\n`,
    );
    expect(note.startsWith(`${checkpointText(checkpoint)}\n— ${AUDIT_LOG_ORIGIN} `)).toBe(true);
    expect(openCheckpoint(note, signer)).toEqual(checkpoint);
    // The published verifier key string is enough to check it.
    expect(openCheckpoint(note, parseVerifierKey(signer.verifierKey))).toEqual(checkpoint);
    expect(Buffer.from(noteSignature(note)!, 'base64')).toHaveLength(68);
  });

  it('the same seed gives the same key (it lives wrapped in service_keys)', () => {
    // Keys whose base64 holds '+' (the separator of the verifier key string) parse too.
    for (let i = 0; i < 30; i++) {
      const signer = checkpointSigner(randomBytes(32));
      expect(parseVerifierKey(signer.verifierKey).verifierKey).toBe(signer.verifierKey);
    }
    const seed = randomBytes(32);
    expect(checkpointSigner(seed).verifierKey).toBe(checkpointSigner(seed).verifierKey);
    expect(checkpointSigner(randomBytes(32)).verifierKey).not.toBe(
      checkpointSigner(seed).verifierKey,
    );
  });

  it('refuses edited notes, other keys and malformed texts', () => {
    const signer = checkpointSigner(randomBytes(32));
    const note = signCheckpoint(checkpoint, signer);
    const edits = [
      note.replace('\n1024\n', '\n1025\n'),
      note.replace('time 2026-12-01T09:00:10', 'time 2026-12-01T09:00:11'),
      note.replace(Buffer.alloc(32, 7).toString('base64'), Buffer.alloc(32, 8).toString('base64')),
      note.replace(/ (\S+)\n$/u, (_m, sig: string) => ` ${sig.slice(0, -4)}AAA=\n`),
      note.slice(0, -1),
      note.replace('\n\n', '\n'),
    ];
    for (const edited of edits) expect(() => openCheckpoint(edited, signer)).toThrow();
    expect(() => openCheckpoint(note, checkpointSigner(randomBytes(32)))).toThrow(/signature/);
    // Signed by a key of another name: not a checkpoint of this log.
    const other = checkpointSigner(randomBytes(32), 'example.com/other-log');
    expect(() =>
      openCheckpoint(
        signCheckpoint({ ...checkpoint, origin: 'example.com/other-log' }, other),
        signer,
      ),
    ).toThrow(/signature/);

    for (const text of [
      `${AUDIT_LOG_ORIGIN}\n01\n${Buffer.alloc(32).toString('base64')}\ntime 2026-12-01T09:00:10.000Z\n`,
      `${AUDIT_LOG_ORIGIN}\n1\n${Buffer.alloc(31).toString('base64')}\ntime 2026-12-01T09:00:10.000Z\n`,
      `${AUDIT_LOG_ORIGIN}\n1\n${Buffer.alloc(32).toString('base64')}\n`,
      `${AUDIT_LOG_ORIGIN}\n1\n${Buffer.alloc(32).toString('base64')}\ntime yesterday\n`,
      `${AUDIT_LOG_ORIGIN}\n-1\n${Buffer.alloc(32).toString('base64')}\ntime 2026-12-01T09:00:10.000Z\n`,
    ]) {
      expect(() => parseCheckpointText(text)).toThrow(/malformed/);
    }
  });
});
