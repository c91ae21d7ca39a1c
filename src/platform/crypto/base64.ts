/**
 * Buffer.from(text, 'base64') silently skips invalid characters, so a mangled
 * column could decode to "something". Stored ciphertext must decode exactly or
 * not at all.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Returns undefined instead of throwing; callers choose the error to raise. */
export function decodeBase64Strict(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || !BASE64.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64');
  // Rejects non-canonical padding bits, e.g. "QR==" vs "QQ==".
  return bytes.toString('base64') === text ? bytes : undefined;
}
