import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export class AdminTokenError extends Error {
  readonly code = 'ERR_ADMIN_TOKEN';
}

export const adminTokenPath = (dataDir: string, service: string) =>
  path.join(dataDir, `${service}-admin-token`);

/**
 * The token that commands present to a running service's loopback admin API. It lives
 * in the data directory, readable by its owner only: whoever can read it could equally
 * read the database files.
 */
export function loadOrCreateAdminToken(dataDir: string, service: string): string {
  const file = adminTokenPath(dataDir, service);
  try {
    writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readAdminToken(dataDir, service);
}

export function readAdminToken(dataDir: string, service: string): string {
  const file = adminTokenPath(dataDir, service);
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    throw new AdminTokenError(`${file} does not exist: start the ${service} first (npm start).`);
  }
  if ((mode & 0o077) !== 0) {
    throw new AdminTokenError(`${file} is readable by others; run chmod 600 ${file}.`);
  }
  const token = readFileSync(file, 'utf8').trim();
  if (token.length < 32)
    throw new AdminTokenError(`${file} is damaged; delete it and restart the ${service}.`);
  return token;
}
