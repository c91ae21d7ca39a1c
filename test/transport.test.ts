import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { LightMyRequestResponse } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBankApp } from '../src/bank/app.js';
import type { BankDB } from '../src/bank/db.js';
import { bankMigrations } from '../src/bank/migrations.js';
import { loadConfig } from '../src/config/config.js';
import { memoryKeyring } from '../src/platform/crypto/index.js';
import { TLS13_CIPHER_SUITES } from '../src/platform/mtls/index.js';
import { createCertificateSigningRequest, initPki, loadPki } from '../src/platform/pki/index.js';
import { openServiceRuntime } from '../src/platform/runtime/service-runtime.js';
import { buildPortalApp } from '../src/portal/app.js';
import type { PortalDB } from '../src/portal/db.js';
import { portalMigrations } from '../src/portal/migrations.js';
import { freshDatabase } from './support/databases.js';
import { addPartner, startLivePortal, type LivePortal } from './support/live-portal.js';
import { E2E_DETAILS, E2E_SCOPES } from './support/partner-client.js';

/*
 * Transport (issue 5, item 7): the partner listener speaks TLS 1.3 only, with its three
 * AEAD suites; the browser-facing apps send HSTS and Secure cookies when their public URL
 * is https (always in production), and neither over plain HTTP (the demo).
 */

describe('the partner listener: TLS 1.3 with AEAD suites only', () => {
  let portal: LivePortal;
  let material: { ca: string; cert: string; key: string };

  beforeAll(async () => {
    portal = await startLivePortal({ name: 'pglite' });
    const partner = await addPartner(portal);
    await partner.close();
    const read = (name: string) => readFileSync(path.join(partner.dir, name), 'utf8');
    material = { ca: read('ca.pem'), cert: read('client-cert.pem'), key: read('client-key.pem') };
  }, 60_000);
  afterAll(async () => {
    await portal?.close();
  });

  /** A TLS handshake with the partner's certificate; resolves with what was agreed. */
  function handshake(
    options: tls.ConnectionOptions,
  ): Promise<{ protocol: string; cipher: string }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: portal.config.portal.mtlsPort,
        servername: 'localhost',
        ...material,
        ...options,
      });
      socket.once('secureConnect', () => {
        const agreed = { protocol: socket.getProtocol()!, cipher: socket.getCipher().standardName };
        socket.end();
        resolve(agreed);
      });
      socket.once('error', reject);
    });
  }

  it('lists exactly the three TLS 1.3 AEAD suites, strongest first', () => {
    expect(TLS13_CIPHER_SUITES.split(':')).toEqual([
      'TLS_AES_256_GCM_SHA384',
      'TLS_CHACHA20_POLY1305_SHA256',
      'TLS_AES_128_GCM_SHA256',
    ]);
  });

  it('agrees TLS 1.3 and the strongest suite by default', async () => {
    expect(await handshake({})).toEqual({
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
    });
  });

  it.each(TLS13_CIPHER_SUITES.split(':'))('accepts %s', async (suite) => {
    expect(await handshake({ ciphers: suite })).toEqual({ protocol: 'TLSv1.3', cipher: suite });
  });

  it.each(['TLS_AES_128_CCM_SHA256', 'TLS_AES_128_CCM_8_SHA256'])(
    'refuses a client offering only %s',
    async (suite) => {
      await expect(handshake({ ciphers: suite })).rejects.toThrow();
    },
  );

  it('refuses a TLS 1.2 client, even with a good certificate and a strong suite', async () => {
    await expect(
      handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }),
    ).rejects.toThrow(/version|protocol/i);
  });

  it('refuses a client without a certificate', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: portal.config.portal.mtlsPort,
      servername: 'localhost',
      ca: material.ca,
    });
    // TLS 1.3: the server's refusal arrives after the client thinks it is connected.
    const outcome = await new Promise<string>((resolve) => {
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      socket.once('close', () => resolve('closed'));
      socket.once('secureConnect', () => socket.write('GET /status HTTP/1.1\r\nHost: x\r\n\r\n'));
      socket.once('data', () => resolve('answered'));
    });
    expect(outcome).not.toBe('answered');
  });
});

function runtimeOptions(env: Record<string, string>) {
  return async () => ({
    config: loadConfig({ SOGLASIE_DATA_DIR: '/nonexistent', LOG_LEVEL: 'silent', ...env }),
    logger: pino({ level: 'silent' }),
    keyring: memoryKeyring(),
    database: (await freshDatabase({ name: 'pglite' })) as never,
  });
}

/** The bank built for these environment variables, without listening. */
async function buildBank(env: Record<string, string>) {
  const runtime = await openServiceRuntime<BankDB>({
    ...(await runtimeOptions(env)()),
    service: 'bank',
    migrations: bankMigrations,
  });
  const app = await buildBankApp(runtime);
  return {
    app,
    close: async () => {
      await app.close();
      await runtime.close();
    },
  };
}

/** The portal (with its partner listener app) for these environment variables. */
async function buildPortal(env: Record<string, string>) {
  const runtime = await openServiceRuntime<PortalDB>({
    ...(await runtimeOptions(env)()),
    service: 'portal',
    migrations: portalMigrations,
  });
  const pkiDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-transport-'));
  await initPki(pkiDir);
  const app = await buildPortalApp(runtime, { pki: await loadPki(pkiDir) });
  return {
    app,
    close: async () => {
      await app.close();
      await runtime.close();
      rmSync(pkiDir, { recursive: true, force: true });
    },
  };
}

const HTTPS = {
  PORTAL_PUBLIC_URL: 'https://portal.example',
  BANK_PUBLIC_URL: 'https://bank.example',
  PORTAL_MTLS_PUBLIC_URL: 'https://partners.portal.example',
};

const setCookies = (res: LightMyRequestResponse) =>
  ([] as string[]).concat(res.headers['set-cookie'] ?? []);

describe.each([
  ['demo, plain HTTP on loopback', { SOGLASIE_MODE: 'demo' }, false],
  ['test mode behind https', { SOGLASIE_MODE: 'test', ...HTTPS }, true],
  ['production', { SOGLASIE_MODE: 'production', ...HTTPS }, true],
] as const)('browser-facing apps: %s', (_name, env, https) => {
  for (const service of ['portal', 'bank'] as const) {
    it(`${service}: HSTS ${https ? 'and Secure' : 'neither, nor Secure'} cookies`, async () => {
      const { app, close } = await (service === 'portal' ? buildPortal(env) : buildBank(env));
      try {
        const res = await app.inject({ url: '/login', headers: { accept: 'text/html' } });
        expect(res.statusCode).toBe(200);
        const hsts = res.headers['strict-transport-security'];
        if (https) expect(hsts).toBe('max-age=31536000; includeSubDomains');
        else expect(hsts).toBeUndefined();
        const [session] = setCookies(res);
        expect(session).toMatch(
          https ? new RegExp(`^__Host-${service}_session=`) : new RegExp(`^${service}_session=`),
        );
        expect(session).toContain('HttpOnly');
        if (https) expect(session).toContain('Secure');
        else expect(session).not.toContain('Secure');
      } finally {
        await close();
      }
    });
  }

  it("portal: oidc-provider's cookies follow the same rule", async () => {
    const { app, close } = await buildPortal(env);
    try {
      const partnerApi = app.partnerApi!;
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const signingJwk = { ...(await exportJWK(publicKey)), kid: 'rp-1', alg: 'ES256' } as JWK;
      const { clientId } = await app.partners!.register({
        name: 'Банк',
        redirectUris: ['https://bank.example/portal/callback'],
        signingJwk,
        csrPem: (await createCertificateSigningRequest({ commonName: 'rp' })).csrPem,
      });
      const issuer =
        env.SOGLASIE_MODE === 'demo' ? 'http://localhost:3000' : HTTPS.PORTAL_PUBLIC_URL;
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'rp-1' })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(issuer)
        .setJti(crypto.randomUUID())
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(privateKey);
      const par = await partnerApi.inject({
        method: 'POST',
        url: '/request',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          client_id: clientId,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
          client_assertion: assertion,
          response_type: 'code',
          redirect_uri: 'https://bank.example/portal/callback',
          scope: E2E_SCOPES,
          code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
          code_challenge_method: 'S256',
          state: 'st',
          authorization_details: JSON.stringify(E2E_DETAILS),
        }).toString(),
      });
      expect(par.statusCode, par.body).toBe(201);
      const { request_uri } = par.json() as { request_uri: string };
      const auth = await app.inject({
        url: `/auth?client_id=${clientId}&request_uri=${encodeURIComponent(request_uri)}`,
        headers: { accept: 'text/html', 'x-forwarded-proto': https ? 'http' : 'https' },
      });
      // Over plain HTTP to the app (a TLS-terminating proxy in front), whatever a client
      // claims in X-Forwarded-Proto: the public URL decides.
      expect(auth.statusCode, auth.body).toBe(303);
      const cookies = setCookies(auth).filter((c) => c.startsWith('portal_oidc_'));
      expect(cookies.length).toBeGreaterThan(0);
      for (const cookie of cookies) {
        expect(cookie).toContain('httponly');
        if (https) expect(cookie).toContain('secure');
        else expect(cookie).not.toContain('secure');
      }
    } finally {
      await close();
    }
  });
});
