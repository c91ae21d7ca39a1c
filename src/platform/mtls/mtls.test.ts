import { once } from 'node:events';
import { request, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { manualClock } from '../clock.js';
import {
  certificateThumbprint,
  createCertificateAuthority,
  createCertificateSigningRequest,
  loadCertificateAuthority,
  type IssuedClientCertificate,
} from '../pki/index.js';
import { createMtlsServerOptions, peerCertificateOf, TLS13_CIPHER_SUITES } from './index.js';

const DAY = 24 * 60 * 60 * 1000;

interface Client {
  certPem: string;
  keyPem: string;
}

async function partnerClient(
  ca: Awaited<ReturnType<typeof loadCertificateAuthority>>,
  commonName: string,
  validityDays = 30,
): Promise<Client & IssuedClientCertificate> {
  const { csrPem, keyPem } = await createCertificateSigningRequest({ commonName });
  return { ...(await ca.issueClientCertificate({ csrPem, validityDays })), keyPem };
}

let caPem: string;
let server: Server;
let port: number;
let handled: number;
let handshakeErrors: string[];
/** Same options but rejectUnauthorized: false, to learn why a certificate fails. */
let lenient: Server;
let lenientPort: number;
let partner: Client & IssuedClientCertificate;
let foreignPartner: Client;
let expiredPartner: Client;
let serverAsClient: Client;

beforeAll(async () => {
  // Created two years ago so that it can also issue a certificate that has expired by now.
  const now = Date.now();
  const ca = await createCertificateAuthority({
    commonName: 'Test partner CA',
    validityDays: 3650,
    clock: manualClock(new Date(now - 730 * DAY)),
  });
  caPem = ca.certPem;
  const authority = await loadCertificateAuthority(ca.certPem, ca.keyPem);
  const serverPair = await authority.issueServerCertificate({
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validityDays: 30,
  });
  partner = await partnerClient(authority, 'bank-1');
  serverAsClient = serverPair;

  const pastAuthority = await loadCertificateAuthority(ca.certPem, ca.keyPem, {
    clock: manualClock(new Date(now - 400 * DAY)),
  });
  expiredPartner = await partnerClient(pastAuthority, 'bank-old', 30);

  const other = await createCertificateAuthority({ commonName: 'Other CA', validityDays: 30 });
  foreignPartner = await partnerClient(
    await loadCertificateAuthority(other.certPem, other.keyPem),
    'bank-1',
  );

  const options = createMtlsServerOptions({
    caPem,
    certPem: serverPair.certPem,
    keyPem: serverPair.keyPem,
  });
  server = createServer(options, (req, res) => {
    handled++;
    const socket = req.socket as TLSSocket;
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        peer: peerCertificateOf(socket),
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().standardName,
      }),
    );
  });
  server.on('tlsClientError', (error: NodeJS.ErrnoException) => {
    handshakeErrors.push(error.code ?? error.message);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;

  lenient = createServer({ ...options, rejectUnauthorized: false }, (req, res) => {
    const socket = req.socket as TLSSocket;
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        peer: peerCertificateOf(socket),
        authorizationError: String(socket.authorizationError),
      }),
    );
  });
  lenient.listen(0, '127.0.0.1');
  await once(lenient, 'listening');
  lenientPort = (lenient.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const s of [server, lenient]) {
    s.closeAllConnections();
    s.close();
  }
  await Promise.all([once(server, 'close'), once(lenient, 'close')]);
});

beforeEach(() => {
  handled = 0;
  handshakeErrors = [];
});

interface Reply {
  status: number;
  body: {
    peer: { thumbprint: string; commonName: string; serialNumber: string } | undefined;
    protocol: string;
    cipher: string;
    authorizationError?: string;
  };
}

interface ClientOptions {
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2';
  ciphers?: string;
  /** The lenient twin listener instead of the real one. */
  lenient?: boolean;
}

/** One GET on a fresh connection (no agent, so no connection reuse between cases). */
function get({ lenient: toLenient, ...options }: ClientOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: toLenient ? lenientPort : port,
        path: '/',
        method: 'GET',
        agent: false,
        ca: caPem,
        ...options,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('partner listener (mutual TLS 1.3)', () => {
  it('serves a partner with a CA-issued certificate and sees its thumbprint', async () => {
    const reply = await get({ cert: partner.certPem, key: partner.keyPem });
    expect(reply.status).toBe(200);
    expect(reply.body.protocol).toBe('TLSv1.3');
    expect(TLS13_CIPHER_SUITES.split(':')).toContain(reply.body.cipher);
    expect(reply.body.peer).toEqual({
      thumbprint: certificateThumbprint(partner.certPem),
      commonName: 'bank-1',
      serialNumber: partner.serialNumber,
    });
    expect(reply.body.peer?.thumbprint).toBe(partner.thumbprint);
  });

  it('refuses a client without a certificate', async () => {
    await expect(get()).rejects.toThrow();
    expect(handled).toBe(0);
    expect(handshakeErrors).toEqual(['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE']);
  });

  /*
   * For these, OpenSSL completes the TLS 1.3 handshake and Node then drops the
   * connection (rejectUnauthorized), so the client sees a reset. The lenient
   * twin listener shows the verification error, proving the reset is for the
   * reason the test names.
   */
  it.each([
    ['from another CA', () => foreignPartner, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['that has expired', () => expiredPartner, 'CERT_HAS_EXPIRED'],
    ['without the clientAuth purpose', () => serverAsClient, 'INVALID_PURPOSE'],
  ])('refuses a client certificate %s', async (_, client, reason) => {
    const { certPem: cert, keyPem: key } = client();
    await expect(get({ cert, key })).rejects.toThrow();
    expect(handled).toBe(0);

    const diagnosis = await get({ cert, key, lenient: true });
    expect(diagnosis.body.authorizationError).toBe(reason);
    expect(diagnosis.body.peer).toBeUndefined();
  });

  it('refuses a client limited to TLS 1.2, even with a good certificate', async () => {
    await expect(
      get({ cert: partner.certPem, key: partner.keyPem, maxVersion: 'TLSv1.2' }),
    ).rejects.toThrow(/version/i);
    expect(handled).toBe(0);
    expect(handshakeErrors).toEqual(['ERR_SSL_UNSUPPORTED_PROTOCOL']);
  });

  it('refuses a TLS 1.3 client that offers only a suite outside the list', async () => {
    await expect(
      get({ cert: partner.certPem, key: partner.keyPem, ciphers: 'TLS_AES_128_CCM_SHA256' }),
    ).rejects.toThrow();
    expect(handled).toBe(0);
    expect(handshakeErrors).toEqual(['ERR_SSL_NO_SHARED_CIPHER']);
    // The same client with a listed suite gets through, so the suite was the reason.
    const reply = await get({
      cert: partner.certPem,
      key: partner.keyPem,
      ciphers: 'TLS_CHACHA20_POLY1305_SHA256',
    });
    expect(reply.body.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
  });
});

describe('createMtlsServerOptions', () => {
  it('asks for TLS 1.3 only, a verified client certificate and the listed suites', () => {
    const options = createMtlsServerOptions({
      caPem,
      certPem: partner.certPem,
      keyPem: partner.keyPem,
    });
    expect(options).toMatchObject({
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
      ca: caPem,
      ciphers: 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256',
    });
  });

  it('rejects missing material as a programming error', () => {
    expect(() =>
      createMtlsServerOptions({ caPem: '', certPem: partner.certPem, keyPem: partner.keyPem }),
    ).toThrow(TypeError);
  });
});

describe('peerCertificateOf', () => {
  it('is undefined for a socket that is not TLS', () => {
    expect(peerCertificateOf(new Socket())).toBeUndefined();
  });

  it('reports a verified certificate on a listener that does not reject (lenient twin)', async () => {
    const reply = await get({ cert: partner.certPem, key: partner.keyPem, lenient: true });
    expect(reply.body.authorizationError).toBe('null');
    expect(reply.body.peer?.thumbprint).toBe(partner.thumbprint);
  });
});
