import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { thumbprintFromPeerCertificate } from '../pki/thumbprint.js';

export interface PeerCertificateInfo {
  /** RFC 8705 `x5t#S256`: compare with the partner record and the token's `cnf`. */
  thumbprint: string;
  /** The subject CN, for logs; undefined if absent or repeated. Never authorize on it. */
  commonName: string | undefined;
  /** Lowercase hex, as `issueClientCertificate` reports it. */
  serialNumber: string;
}

/**
 * The verified client certificate of a connection, or undefined when there is
 * none: a plain socket, a TLS socket without a certificate, or one whose
 * certificate did not verify (possible only on a listener that does not
 * reject unauthorized clients). Taking `net.Socket` lets callers pass
 * `request.raw.socket` as Fastify types it.
 */
export function peerCertificateOf(socket: Socket): PeerCertificateInfo | undefined {
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  // Node returns {} (not null) when the peer sent no certificate.
  const cert = socket.getPeerCertificate();
  if (!cert?.raw || cert.raw.length === 0) return undefined;
  // Node gives an array when the subject has the attribute more than once;
  // picking one would let the requester choose which the logs show.
  const cn: unknown = cert.subject?.CN;
  return {
    thumbprint: thumbprintFromPeerCertificate(cert.raw),
    commonName: typeof cn === 'string' ? cn : undefined,
    serialNumber: cert.serialNumber.toLowerCase(),
  };
}
