import { X509Certificate } from 'node:crypto';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../clock.js';
import { createCertificateAuthority, loadCertificateAuthority } from './authority.js';
import { createCertificateSigningRequest } from './csr.js';
import { PkiError } from './errors.js';
import { initPki, loadPki, PKI_FILES } from './files.js';

const posix = process.platform !== 'win32';
const DAY = 24 * 60 * 60 * 1000;

let root: string;
let dir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'soglasie-pki-'));
  dir = join(root, 'pki');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<PkiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PkiError) return error;
    throw error;
  }
  throw new Error('expected a PkiError, got success');
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;
const read = (name: string) => readFile(join(dir, name), 'utf8');

async function snapshot(): Promise<Record<string, string>> {
  const entries = await Promise.all(
    Object.values(PKI_FILES).map(async (name) => [name, await read(name)] as const),
  );
  return Object.fromEntries(entries);
}

describe('initPki', () => {
  it('creates the CA and the listener pair, keys 0600, in a new 0700 directory', async () => {
    const result = await initPki(dir);
    expect(result.created).toBe(true);
    expect(result.files.sort()).toEqual(
      Object.values(PKI_FILES)
        .map((name) => join(dir, name))
        .sort(),
    );
    expect((await readdir(dir)).sort()).toEqual(Object.values(PKI_FILES).sort());
    if (posix) {
      expect(await mode(dir)).toBe(0o700);
      expect(await mode(join(dir, PKI_FILES.caKey))).toBe(0o600);
      expect(await mode(join(dir, PKI_FILES.serverKey))).toBe(0o600);
      expect(await mode(join(dir, PKI_FILES.caCert))).toBe(0o644);
    }
    const server = new X509Certificate(await read(PKI_FILES.serverCert));
    expect(server.checkIssued(new X509Certificate(await read(PKI_FILES.caCert)))).toBe(true);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });

  it('never overwrites: a second run changes nothing and says so', async () => {
    await initPki(dir);
    const before = await snapshot();
    const again = await initPki(dir);
    expect(again).toEqual({ created: false, files: [] });
    expect(await snapshot()).toEqual(before);
  });

  it('re-issues a missing listener pair from the existing CA, leaving the CA alone', async () => {
    await initPki(dir);
    const before = await snapshot();
    await unlink(join(dir, PKI_FILES.serverCert));
    await unlink(join(dir, PKI_FILES.serverKey));

    const result = await initPki(dir);
    expect(result.created).toBe(true);
    expect(result.files.sort()).toEqual(
      [join(dir, PKI_FILES.serverCert), join(dir, PKI_FILES.serverKey)].sort(),
    );
    expect(await read(PKI_FILES.caCert)).toBe(before[PKI_FILES.caCert]);
    expect(await read(PKI_FILES.caKey)).toBe(before[PKI_FILES.caKey]);
    expect(await read(PKI_FILES.serverCert)).not.toBe(before[PKI_FILES.serverCert]);
    await expect(loadPki(dir)).resolves.toBeDefined();
  });

  it('refuses half a CA instead of pairing it with a new key', async () => {
    await initPki(dir);
    const caCert = await read(PKI_FILES.caCert);
    await unlink(join(dir, PKI_FILES.caKey));
    const error = await failure(initPki(dir));
    expect(error.code).toBe('ERR_PKI_CORRUPT');
    expect(error.message).toContain(PKI_FILES.caKey);
    expect(await read(PKI_FILES.caCert)).toBe(caCert);
    await expect(stat(join(dir, PKI_FILES.caKey))).rejects.toThrow(/ENOENT/);
  });

  it('refuses to run while another init holds the lock, and cleans up its own lock', async () => {
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, '.pki-init.lock'), '12345\n');
    expect((await failure(initPki(dir))).code).toBe('ERR_PKI_LOCKED');
    expect(await readdir(dir)).toEqual(['.pki-init.lock']);

    await unlink(join(dir, '.pki-init.lock'));
    await initPki(dir);
    expect(await readdir(dir)).not.toContain('.pki-init.lock');
  });

  it('lets only one of two concurrent runs create the CA', async () => {
    const results = await Promise.allSettled([initPki(dir), initPki(dir)]);
    const created = results.filter((r) => r.status === 'fulfilled' && r.value.created);
    expect(created).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as PkiError).code).toBe('ERR_PKI_LOCKED');
    }
    await expect(loadPki(dir)).resolves.toBeDefined();
  });

  it('dates the certificates from the clock', async () => {
    const clock = manualClock('2026-12-01T09:00:00Z');
    await initPki(dir, { clock, caValidityDays: 100, serverValidityDays: 10 });
    const ca = new X509Certificate(await read(PKI_FILES.caCert));
    const server = new X509Certificate(await read(PKI_FILES.serverCert));
    expect(ca.validToDate.toISOString()).toBe('2027-03-11T09:00:00.000Z');
    expect(server.validToDate.toISOString()).toBe('2026-12-11T09:00:00.000Z');
  });
});

describe('loadPki', () => {
  it('reads the files and gives an authority whose certificates chain to ca.pem', async () => {
    await initPki(dir);
    const pki = await loadPki(dir);
    expect(pki.caPem).toBe(await read(PKI_FILES.caCert));
    expect(pki.serverCertPem).toBe(await read(PKI_FILES.serverCert));
    expect(pki.serverKeyPem).toBe(await read(PKI_FILES.serverKey));

    const { csrPem } = await createCertificateSigningRequest({ commonName: 'bank-1' });
    const issued = await pki.authority.issueClientCertificate({ csrPem, validityDays: 1 });
    expect(new X509Certificate(issued.certPem).checkIssued(new X509Certificate(pki.caPem))).toBe(
      true,
    );
  });

  it('says to run `soglasie pki init` when the directory or a file is missing', async () => {
    const missingDir = await failure(loadPki(dir));
    expect(missingDir.code).toBe('ERR_PKI_MISSING');
    expect(missingDir.message).toContain('soglasie pki init');

    await initPki(dir);
    await unlink(join(dir, PKI_FILES.serverKey));
    const missingFile = await failure(loadPki(dir));
    expect(missingFile.code).toBe('ERR_PKI_MISSING');
    expect(missingFile.message).toContain(PKI_FILES.serverKey);
  });

  it.runIf(posix)('refuses a private key that others can read', async () => {
    await initPki(dir);
    await chmod(join(dir, PKI_FILES.caKey), 0o640);
    const error = await failure(loadPki(dir));
    expect(error.code).toBe('ERR_PKI_PERMISSIONS');
    expect(error.message).toContain(`chmod 600 ${join(dir, PKI_FILES.caKey)}`);
  });

  it('refuses files that do not parse or do not belong together', async () => {
    await initPki(dir);
    const good = await snapshot();
    const other = await createCertificateAuthority({ commonName: 'Other CA', validityDays: 30 });
    const otherServer = await (
      await loadCertificateAuthority(other.certPem, other.keyPem)
    ).issueServerCertificate({ dnsNames: ['localhost'], validityDays: 30 });

    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ [PKI_FILES.caCert]: 'garbage' }, /ca\.pem/],
      [{ [PKI_FILES.caKey]: other.keyPem }, /not a usable CA/],
      [{ [PKI_FILES.serverKey]: otherServer.keyPem }, /does not belong/],
      [{ [PKI_FILES.serverCert]: 'garbage' }, /does not parse/],
      [
        { [PKI_FILES.serverCert]: otherServer.certPem, [PKI_FILES.serverKey]: otherServer.keyPem },
        /was not issued by/,
      ],
    ];
    for (const [files, message] of cases) {
      for (const [name, content] of Object.entries(files)) {
        await writeFile(join(dir, name), content, { mode: 0o600 });
      }
      const error = await failure(loadPki(dir));
      expect(error.code, Object.keys(files).join()).toBe('ERR_PKI_CORRUPT');
      expect(error.message).toMatch(message);
      for (const name of Object.keys(files)) await writeFile(join(dir, name), good[name]!);
    }
    await expect(loadPki(dir)).resolves.toBeDefined();
  });

  it('refuses an expired listener certificate, saying how to replace it', async () => {
    const clock = manualClock('2026-12-01T09:00:00Z');
    await initPki(dir, { clock, serverValidityDays: 10 });
    await expect(loadPki(dir, { clock })).resolves.toBeDefined();
    clock.advance(11 * DAY);
    const error = await failure(loadPki(dir, { clock }));
    expect(error.code).toBe('ERR_PKI_EXPIRED');
    expect(error.message).toContain(PKI_FILES.serverCert);
    expect(error.message).toContain('soglasie pki init');
  });
});
