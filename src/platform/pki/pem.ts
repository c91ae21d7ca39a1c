import { PkiError, type PkiErrorCode } from './errors.js';

/** Far above any certificate or CSR we handle (a few KiB with RSA 8192). */
const MAX_PEM_LENGTH = 64 * 1024;

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/** PEM with 64-character lines, as OpenSSL writes it. */
export function encodePem(der: Uint8Array | ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString(
    'base64',
  );
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The DER inside exactly one PEM block with the expected label. A file with two
 * certificates is refused rather than read as "the first one": a thumbprint or
 * a trust decision must never depend on which block a parser happens to pick.
 */
export function decodeSinglePem(
  text: unknown,
  label: string,
  code: PkiErrorCode,
  what: string,
): Uint8Array<ArrayBuffer> {
  if (typeof text !== 'string') throw new PkiError(code, `${what} is not PEM text`);
  // A partner-supplied CSR arrives over an API; bound the work before parsing.
  if (text.length > MAX_PEM_LENGTH) {
    throw new PkiError(code, `${what} is longer than ${MAX_PEM_LENGTH} characters`);
  }
  const blocks = [...text.matchAll(BLOCK)];
  if (blocks.length !== 1) {
    throw new PkiError(
      code,
      `${what} must hold exactly one PEM block, found ${blocks.length === 0 ? 'none' : blocks.length}`,
    );
  }
  const [, found, body] = blocks[0]!;
  if (found !== label) {
    throw new PkiError(code, `${what} is a PEM "${found}" block, expected "${label}"`);
  }
  const base64 = body!.replace(/\r?\n/g, '');
  const der = Buffer.from(base64, 'base64');
  // Buffer.from skips invalid characters silently; re-encoding proves it did not.
  if (der.length === 0 || der.toString('base64') !== base64) {
    throw new PkiError(code, `${what} has a damaged base64 body`);
  }
  // A plain copy: @peculiar/x509 wants an ArrayBuffer-backed view, not a pooled Buffer.
  return new Uint8Array(der);
}
