import { createPrivateKey, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { link, lstat, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import {
  createCertificateAuthority,
  loadCertificateAuthority,
  type CertificateAuthority,
} from './authority.js';
import { PkiError } from './errors.js';

/*
 * The development PKI lives in one directory (normally `<data dir>/pki`):
 *
 *   ca.pem          the CA certificate: what the partner listener trusts
 *   ca-key.pem      the CA private key (0600): `partner add` signs with it
 *   server.pem      the partner listener's certificate, issued by the CA
 *   server-key.pem  its private key (0600)
 *
 * Same rules as the KEK file: key files are never overwritten, never written
 * in place, and refused when others can read them. Losing the CA key means
 * re-issuing every partner's certificate, so nothing here ever replaces it.
 */
export const PKI_FILES = {
  caCert: 'ca.pem',
  caKey: 'ca-key.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
} as const;

const LOCK_FILE = '.pki-init.lock';
const INIT_HINT = 'run `soglasie pki init`';

export interface InitPkiOptions {
  clock?: Clock;
  caCommonName?: string;
  caValidityDays?: number;
  /** SAN DNS names of the listener certificate; default `localhost`. */
  serverDnsNames?: readonly string[];
  /** SAN IP addresses of the listener certificate; default `127.0.0.1` and `::1`. */
  serverIpAddresses?: readonly string[];
  serverValidityDays?: number;
}

export interface InitPkiResult {
  /** True when this call wrote anything; false when every file already existed. */
  created: boolean;
  /** Absolute paths of the files written by this call. */
  files: string[];
}

function requireDir(dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir === '') {
    throw new TypeError('PKI directory must be a non-empty string');
  }
}

function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return false;
    throw error;
  }
}

/**
 * Writes a complete file under a temporary name, fsyncs it and links it into
 * place. link() fails if the target exists, so an existing file is never
 * replaced, and a reader never sees a half-written key.
 */
async function writeNewFile(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
    await handle.close();
    await link(temp, path);
  } catch (error) {
    await handle.close().catch(() => {});
    if (isErrno(error, 'EEXIST')) {
      throw new PkiError('ERR_PKI_LOCKED', `${path} appeared while \`pki init\` was writing it`);
    }
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Which of a cert/key pair exist; half a pair is refused, never completed. */
async function pairState(dir: string, cert: string, key: string): Promise<'both' | 'none'> {
  const [hasCert, hasKey] = await Promise.all([exists(join(dir, cert)), exists(join(dir, key))]);
  if (hasCert && hasKey) return 'both';
  if (!hasCert && !hasKey) return 'none';
  const [present, absent] = hasCert ? [cert, key] : [key, cert];
  throw new PkiError(
    'ERR_PKI_CORRUPT',
    `${join(dir, present)} exists but ${join(dir, absent)} does not. ` +
      'Restore the missing file from backup; `pki init` will not pair it with a new one.',
  );
}

/**
 * Creates the CA and the listener certificate in `dir` where they are missing
 * (mode 0700 for a new directory, 0600 for keys). An existing CA is never
 * touched; if only the listener pair is missing, the existing CA issues it.
 * Half a pair (a certificate without its key or the reverse) is refused with
 * ERR_PKI_CORRUPT, because completing it would silently mismatch.
 */
export async function initPki(dir: string, options: InitPkiOptions = {}): Promise<InitPkiResult> {
  requireDir(dir);
  const clock = options.clock ?? systemClock;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const lockPath = join(dir, LOCK_FILE);
  let lock;
  try {
    lock = await open(lockPath, 'wx', 0o600);
  } catch (error) {
    if (!isErrno(error, 'EEXIST')) throw error;
    throw new PkiError(
      'ERR_PKI_LOCKED',
      `another \`pki init\` seems to be running (lock file ${lockPath} exists); ` +
        'if none is, remove the lock file and retry',
    );
  }
  const files: string[] = [];
  try {
    await lock.writeFile(`${process.pid}\n`);
    const path = (name: string) => join(dir, name);

    let ca: { certPem: string; keyPem: string };
    if ((await pairState(dir, PKI_FILES.caCert, PKI_FILES.caKey)) === 'none') {
      ca = await createCertificateAuthority({
        commonName: options.caCommonName ?? 'Soglasie Development CA',
        validityDays: options.caValidityDays ?? 3650,
        clock,
      });
      // Key first: a crash in between leaves a key without a certificate,
      // which is refused above and never used to sign anything.
      await writeNewFile(path(PKI_FILES.caKey), ca.keyPem, 0o600);
      files.push(path(PKI_FILES.caKey));
      await writeNewFile(path(PKI_FILES.caCert), ca.certPem, 0o644);
      files.push(path(PKI_FILES.caCert));
    } else {
      ca = {
        certPem: await readPkiFile(path(PKI_FILES.caCert), false),
        keyPem: await readPkiFile(path(PKI_FILES.caKey), true),
      };
    }

    if ((await pairState(dir, PKI_FILES.serverCert, PKI_FILES.serverKey)) === 'none') {
      const authority = await openAuthority(dir, ca.certPem, ca.keyPem, clock);
      const server = await authority.issueServerCertificate({
        dnsNames: options.serverDnsNames ?? ['localhost'],
        ipAddresses: options.serverIpAddresses ?? ['127.0.0.1', '::1'],
        validityDays: options.serverValidityDays ?? 825,
      });
      await writeNewFile(path(PKI_FILES.serverKey), server.keyPem, 0o600);
      files.push(path(PKI_FILES.serverKey));
      await writeNewFile(path(PKI_FILES.serverCert), server.certPem, 0o644);
      files.push(path(PKI_FILES.serverCert));
    }
    return { created: files.length > 0, files };
  } finally {
    await lock.close();
    await unlink(lockPath).catch(() => {});
  }
}

/**
 * Reads one PKI file. Missing: ERR_PKI_MISSING with the command that makes
 * it. A private key others can read: ERR_PKI_PERMISSIONS, checked on the open
 * handle so that the file checked is the file read.
 */
async function readPkiFile(path: string, secret: boolean): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
    throw new PkiError('ERR_PKI_MISSING', `PKI file ${path} does not exist; ${INIT_HINT}`);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new PkiError('ERR_PKI_CORRUPT', `${path} is not a regular file`);
    // Windows has no POSIX modes; its ACLs are the operator's concern there.
    if (secret && process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(4, '0');
      throw new PkiError(
        'ERR_PKI_PERMISSIONS',
        `private key ${path} has mode ${mode}, so users other than its owner can read it; ` +
          `run: chmod 600 ${path}`,
      );
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function openAuthority(
  dir: string,
  certPem: string,
  keyPem: string,
  clock: Clock,
): Promise<CertificateAuthority> {
  try {
    return await loadCertificateAuthority(certPem, keyPem, { clock });
  } catch (error) {
    if (!(error instanceof PkiError) || error.code !== 'ERR_CA_INVALID') throw error;
    throw new PkiError(
      'ERR_PKI_CORRUPT',
      `${join(dir, PKI_FILES.caCert)} and ${join(dir, PKI_FILES.caKey)} are not a usable CA: ` +
        `${error.message}. Restore them from backup.`,
      { cause: error },
    );
  }
}

export interface Pki {
  dir: string;
  /** What the partner listener trusts for client certificates. */
  caPem: string;
  /** The listener's own certificate and PKCS#8 key. */
  serverCertPem: string;
  serverKeyPem: string;
  serverNotAfter: Date;
  /** Issues partner certificates (`partner add`). */
  authority: CertificateAuthority;
}

function checkValidity(cert: X509Certificate, path: string, now: Date, remedy: string): void {
  if (now < cert.validFromDate || now > cert.validToDate) {
    throw new PkiError(
      'ERR_PKI_EXPIRED',
      `${path} is valid from ${cert.validFromDate.toISOString()} to ` +
        `${cert.validToDate.toISOString()}, not now (${now.toISOString()}); ${remedy}`,
    );
  }
}

/**
 * Reads and cross-checks the PKI directory: the CA key matches the CA, the
 * listener key matches the listener certificate, the CA issued it, and both
 * are valid now. Each failure names the file and what to do, so a service
 * refuses to start with a clear message instead of failing every handshake.
 */
export async function loadPki(dir: string, options: { clock?: Clock } = {}): Promise<Pki> {
  requireDir(dir);
  const clock = options.clock ?? systemClock;
  const path = (name: string) => join(dir, name);
  const caPem = await readPkiFile(path(PKI_FILES.caCert), false);
  const caKeyPem = await readPkiFile(path(PKI_FILES.caKey), true);
  const serverCertPem = await readPkiFile(path(PKI_FILES.serverCert), false);
  const serverKeyPem = await readPkiFile(path(PKI_FILES.serverKey), true);

  const authority = await openAuthority(dir, caPem, caKeyPem, clock);
  const caCert = new X509Certificate(caPem); // parsed already by openAuthority

  let serverCert: X509Certificate;
  let serverKey: KeyObject;
  try {
    serverCert = new X509Certificate(serverCertPem);
    serverKey = createPrivateKey({ key: serverKeyPem, format: 'pem' });
  } catch (error) {
    throw new PkiError(
      'ERR_PKI_CORRUPT',
      `${path(PKI_FILES.serverCert)} or ${path(PKI_FILES.serverKey)} does not parse`,
      { cause: error },
    );
  }
  const reissue =
    `delete ${path(PKI_FILES.serverCert)} and ${path(PKI_FILES.serverKey)}, ` +
    `then ${INIT_HINT} to issue new ones`;
  if (!serverCert.checkPrivateKey(serverKey)) {
    throw new PkiError(
      'ERR_PKI_CORRUPT',
      `${path(PKI_FILES.serverKey)} does not belong to ${path(PKI_FILES.serverCert)}; ${reissue}`,
    );
  }
  if (!serverCert.checkIssued(caCert) || !serverCert.verify(caCert.publicKey)) {
    throw new PkiError(
      'ERR_PKI_CORRUPT',
      `${path(PKI_FILES.serverCert)} was not issued by ${path(PKI_FILES.caCert)}; ${reissue}`,
    );
  }
  const now = clock.now();
  checkValidity(
    caCert,
    path(PKI_FILES.caCert),
    now,
    'a new CA means issuing every partner a new certificate',
  );
  checkValidity(serverCert, path(PKI_FILES.serverCert), now, reissue);

  return {
    dir,
    caPem,
    serverCertPem,
    serverKeyPem,
    serverNotAfter: serverCert.validToDate,
    authority,
  };
}
