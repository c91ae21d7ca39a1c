import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPair, importJWK, SignJWT, UnsecuredJWT, type JWK } from 'jose';
import { sql } from 'kysely';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import { openDatabase } from '../../src/platform/db/index.js';
import {
  createCertificateAuthority,
  createCertificateSigningRequest,
  loadCertificateAuthority,
} from '../../src/platform/pki/index.js';
import { readAdminToken } from '../../src/platform/runtime/admin-token.js';
import { HttpClient, startDemo, type DemoProcess } from '../support/demo-process.js';
import { citizenApproves, partnerClient } from '../support/partner-client.js';

/*
 * The hostile half of the FAPI 2.0 story: protocol messages a careless or malicious
 * partner (or a meddling browser) could send, each refused with the error the
 * specifications name, and leaving nothing behind. The last test stops the demo and
 * reads the portal's own ledger (consents and audit log) to prove the refusals left no
 * consent and no data read.
 */

const PASSWORD = 'Demo-Passw0rd!';
const PHONE = '+79990000001';
const SCOPES = 'openid fullname birthdate snils';
const DETAILS = [
  {
    type: 'soglasie_consent',
    sysname: 'DEBIT_CARD',
    purposes: ['Оформление дебетовой карты без визита в офис'],
    actions: ['READ_AND_STORE'],
    scopes: ['fullname', 'birthdate', 'snils'],
    duration_days: 90,
  },
];
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

type Partner = Awaited<ReturnType<typeof partnerClient>>;
type Params = Record<string, string | undefined>;

describe('FAPI 2.0: hostile and malformed protocol messages are refused', () => {
  let dataDir: string;
  let demo: DemoProcess;
  let rp: Partner;
  let mtlsUrl: string;
  let issuer: string;
  /** Partner A's private_key_jwt key, as `partner add` wrote it. */
  let signingKid: string;
  let signingKey: CryptoKey;
  const partnerFile = (name: string) =>
    readFileSync(path.join(dataDir, 'bank-partner', name), 'utf8');
  /** What the portal's ledger must show at the end: only what the tests let through. */
  const ledger = { granted: 0, denied: 0, codeFailed: 0, reads: 0 };
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-fapi-neg-'));
    demo = await startDemo({ SOGLASIE_DATA_DIR: dataDir });
    rp = await partnerClient(path.join(dataDir, 'bank-partner'));
    closers.push(rp.close);
    mtlsUrl = new URL(rp.info.mtls_endpoints.token_endpoint!).origin;
    issuer = rp.info.issuer;
    const jwk = JSON.parse(partnerFile('signing-key.jwk.json')) as JWK;
    signingKid = jwk.kid!;
    signingKey = (await importJWK(jwk, 'ES256')) as CryptoKey;
  }, 90_000);

  afterAll(async () => {
    for (const close of closers) await close().catch(() => undefined);
    if (demo?.child.exitCode === null) await demo.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // ---------------------------------------------------------------- helpers

  /** The parameters of a well-formed request; `undefined` in `changes` drops one. */
  async function params(changes: Params = {}) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const all: Params = {
      redirect_uri: rp.info.redirect_uris[0]!,
      scope: SCOPES,
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      authorization_details: JSON.stringify(DETAILS),
      ...changes,
    };
    const defined = Object.fromEntries(
      Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined),
    );
    return { params: defined, codeVerifier, state };
  }

  /** PAR through openid-client with the given client configuration. */
  async function par(changes: Params = {}, config: client.Configuration = rp.config) {
    const p = await params(changes);
    return { ...p, url: await client.buildAuthorizationUrlWithPAR(config, p.params) };
  }

  /** The same client metadata under another client_id or authentication. */
  function configFor(clientId: string, auth: client.ClientAuth) {
    const config = new client.Configuration(
      rp.config.serverMetadata(),
      clientId,
      { use_mtls_endpoint_aliases: true, token_endpoint_auth_method: 'private_key_jwt' },
      auth,
    );
    config[client.customFetch] = rp.config[client.customFetch]!;
    client.allowInsecureRequests(config);
    return config;
  }

  /** A client assertion as private_key_jwt asks for, signed however the test likes. */
  function assertion(
    header: { alg: string; kid?: string },
    key: CryptoKey | Uint8Array,
    claims: Record<string, unknown> = {},
  ) {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({
      iss: rp.info.client_id,
      sub: rp.info.client_id,
      aud: issuer,
      jti: client.randomState(),
      iat: now,
      exp: now + 60,
      ...claims,
    })
      .setProtectedHeader(header)
      .sign(key);
  }

  /** A PAR request by hand over the mTLS connection, for what the library will not send. */
  async function rawPar(clientAssertion: string, agent: Agent = rp.agent) {
    const { params: p } = await params();
    const res = await undiciFetch(`${mtlsUrl}/request`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        ...p,
        client_id: rp.info.client_id,
        response_type: 'code',
        client_assertion_type: JWT_BEARER,
        client_assertion: clientAssertion,
      }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** A data API read over a partner's mTLS connection, with whatever headers. */
  async function read(partner: Partner, resource: string, headers: Record<string, string> = {}) {
    const res = await partner.request(`${mtlsUrl}${resource}`, headers);
    const text = await res.text();
    return {
      status: res.status,
      wwwAuthenticate: res.headers.get('www-authenticate'),
      body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, unknown>,
    };
  }

  /** A full approval by the citizen and the token exchange: the happy path. */
  async function approvedTokens() {
    const { url, codeVerifier, state } = await par();
    const { callback } = await citizenApproves(demo.portalUrl, url);
    ledger.granted++;
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    return { tokens, sub: tokens.claims()!.sub };
  }

  let shared: ReturnType<typeof approvedTokens> | undefined;
  /** One genuine token for the tests that only need to present one. */
  const genuine = () => (shared ??= approvedTokens());

  async function outboxCode(to: string) {
    const res = await fetch(`${demo.portalUrl}/dev/outbox?to=${encodeURIComponent(to)}`);
    return ((await res.json()) as { code: string }[])[0]!.code;
  }

  /** Follows portal redirects until one leaves the portal (the partner's callback). */
  async function followToCallback(
    browser: HttpClient,
    res: { status: number; location: string | null },
  ) {
    for (let hops = 0; hops < 10; hops++) {
      expect([302, 303]).toContain(res.status);
      const location = new URL(res.location!, demo.portalUrl);
      if (location.origin !== new URL(demo.portalUrl).origin) return location;
      res = await browser.request(location.href);
    }
    throw new Error('too many redirects');
  }

  /** The citizen's browser from the authorization URL through login to the consent screen. */
  async function citizenAtConsent(authorizationUrl: URL) {
    const browser = new HttpClient(demo.portalUrl);
    let res = await browser.request(authorizationUrl.href);
    for (let hops = 0; hops < 20; hops++) {
      if (res.status === 302 || res.status === 303) {
        const location = new URL(res.location!, demo.portalUrl);
        expect(location.origin).toBe(new URL(demo.portalUrl).origin);
        res = await browser.request(location.href);
        continue;
      }
      expect(res.status, res.body.slice(0, 500)).toBe(200);
      if (res.body.includes('data-testid="login-username"')) {
        res = await browser.request('/login', {
          form: { _csrf: HttpClient.csrf(res.body), username: PHONE, password: PASSWORD },
        });
        const codePage = await browser.request(res.location!);
        res = await browser.request('/login/code', {
          form: { _csrf: HttpClient.csrf(codePage.body), code: await outboxCode(PHONE) },
        });
      } else if (res.body.includes('data-testid="consent-approve"')) {
        const uid = /action="\/interaction\/([^"/]+)\/confirm"/.exec(res.body)![1]!;
        return { browser, page: res.body, uid };
      } else {
        throw new Error(`unexpected page:\n${res.body.slice(0, 800)}`);
      }
    }
    throw new Error('too many redirects');
  }

  // ---------------------------------------------------- PAR, PKCE and the code

  it('1. PAR without PKCE (no code_challenge) → invalid_request', async () => {
    await expect(
      par({ code_challenge: undefined, code_challenge_method: undefined }),
    ).rejects.toMatchObject({
      error: 'invalid_request',
      status: 400,
      error_description: expect.stringMatching(/PKCE/),
    });
  });

  it('2. PAR with code_challenge_method=plain → invalid_request', async () => {
    const verifier = client.randomPKCECodeVerifier();
    await expect(
      par({ code_challenge: verifier, code_challenge_method: 'plain' }),
    ).rejects.toMatchObject({
      error: 'invalid_request',
      status: 400,
      error_description: expect.stringMatching(/code_challenge_method/),
    });
    // A challenge without a method is not taken to mean plain either.
    await expect(par({ code_challenge_method: undefined })).rejects.toMatchObject({
      error: 'invalid_request',
      status: 400,
    });
  });

  it('3. a wrong code_verifier → invalid_grant; the code survives that, not a replay', async () => {
    const { url, codeVerifier, state } = await par();
    const { callback } = await citizenApproves(demo.portalUrl, url);
    ledger.granted++;
    expect(callback.searchParams.get('code')).toBeTruthy();

    const wrong = client.randomPKCECodeVerifier(); // well-formed, just not the one
    await expect(
      client.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: wrong,
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant', status: 400 });
    // Malformed (too short): a different error, still no token.
    await expect(
      client.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: 'short',
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: 'invalid_request', status: 400 });

    // oidc-provider 9 (lib/actions/grants/authorization_code.js) runs checkPKCE before
    // consumeGrantSource, so failed attempts do not consume the code: the rightful client
    // still redeems it within its 60 s lifetime. Guessing a 43+ character verifier is
    // hopeless, and neither RFC 7636 nor FAPI 2.0 asks for invalidation here. Only a
    // successful redemption consumes the code (a replay is the next test).
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    expect(tokens.access_token).toBeTruthy();
  });

  // RFC 6749 §4.1.2: a code used twice is refused and the tokens already issued from it
  // die. oidc-provider revokes the grant; the portal ends the consent with it, so the JWT
  // access token of the first redemption stops reading at once (regression guard).
  it('a replayed code revokes what the first redemption issued', async () => {
    const { url, codeVerifier, state } = await par();
    const { callback } = await citizenApproves(demo.portalUrl, url);
    ledger.granted++;
    const checks = { pkceCodeVerifier: codeVerifier, expectedState: state };
    const tokens = await client.authorizationCodeGrant(rp.config, callback, checks);
    await expect(client.authorizationCodeGrant(rp.config, callback, checks)).rejects.toMatchObject({
      error: 'invalid_grant',
      status: 400,
    });
    await expect(client.refreshTokenGrant(rp.config, tokens.refresh_token!)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    const res = await read(rp, `/rs/prns/${tokens.claims()!.sub}`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    if (res.status === 200) ledger.reads++; // the ledger records what really got through
    expect([401, 403], `a read after the replay answered ${res.status}`).toContain(res.status);
  });

  it('4. an unknown client_id at PAR → invalid_client', async () => {
    // The partner's own, valid key and certificate: only the client_id is made up.
    const stranger = configFor(
      'partner-doesnotexist',
      client.PrivateKeyJwt({ key: signingKey, kid: signingKid }),
    );
    await expect(par({}, stranger)).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('5. redirect URIs that are not registered, however close → refused at PAR', async () => {
    const registered = new URL(rp.info.redirect_uris[0]!);
    const otherPort = String(Number(registered.port) + 1);
    const variants = [
      `${registered.href}/`, // trailing slash
      registered.href.replace(`:${registered.port}/`, `:${otherPort}/`), // other port
      new URL('/portal/other', registered).href, // other path
      registered.href.replace('/callback', '/Callback'), // other case
      registered.href.replace('http:', 'https:'), // http → https
      registered.href.replace('localhost', '127.0.0.1'), // other host, same machine
      `${registered.href}?next=/evil`, // extra query
    ];
    // The registered one itself passes, so the variants fail for their difference alone.
    await expect(par()).resolves.toBeDefined();
    for (const redirect_uri of variants) {
      expect(redirect_uri).not.toBe(registered.href);
      await expect(par({ redirect_uri }), redirect_uri).rejects.toMatchObject({
        error: 'invalid_request',
        status: 400,
        error_description: expect.stringMatching(/redirect_uri/),
      });
    }
  });

  it('6. /auth without a pushed request is refused; /token on the web port points to mTLS', async () => {
    // openid-client builds the classic front-channel request the portal must not accept.
    // The redirect URI is the registered one, so RFC 6749 §4.1.2.1 sends the error back
    // to the partner: invalid_request with iss and state, and of course no code.
    const { params: p, state } = await params();
    const plain = await fetch(client.buildAuthorizationUrl(rp.config, p), { redirect: 'manual' });
    expect(plain.status).toBe(303);
    const back = new URL(plain.headers.get('location')!);
    expect(back.origin + back.pathname).toBe(rp.info.redirect_uris[0]);
    expect(Object.fromEntries(back.searchParams)).toEqual({
      error: 'invalid_request',
      error_description: 'Pushed Authorization Request must be used',
      state,
      iss: issuer,
    });

    // The same with a redirect URI of the attacker's: an error page, not an open redirect.
    const { params: evil } = await params({ redirect_uri: 'https://evil.example/callback' });
    const evilRes = await fetch(client.buildAuthorizationUrl(rp.config, evil), {
      redirect: 'manual',
    });
    expect(evilRes.status).toBe(400);
    expect(evilRes.headers.get('location')).toBeNull();
    expect(await evilRes.text()).toContain('Код ошибки: invalid_redirect_uri');

    // A request_uri that was never pushed.
    const forged = new URL(`${issuer}/auth`);
    forged.searchParams.set('client_id', rp.info.client_id);
    forged.searchParams.set('request_uri', 'urn:ietf:params:oauth:request_uri:forged-123');
    const forgedRes = await fetch(forged, { redirect: 'manual' });
    expect(forgedRes.status).toBe(400);
    expect(await forgedRes.text()).toContain('Код ошибки: invalid_request_uri');

    // Partners talk to /token over mTLS only; the web port says where to go.
    const { params: tokenBody } = await params({ grant_type: 'authorization_code', code: 'x' });
    const token = await fetch(`${demo.portalUrl}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(tokenBody).toString(),
    });
    expect(token.status).toBe(400);
    const json = (await token.json()) as { error: string; error_description: string };
    expect(json.error).toBe('invalid_request');
    expect(json.error_description).toContain(`${mtlsUrl}/token`);
  });

  it('a request_uri is dead once its flow has ended', async () => {
    const { url } = await par();
    // RFC 9126 §4 lets the server tolerate a reload while the citizen is still on the way
    // (oidc-provider consumes the pushed request only when it answers the partner)…
    for (let i = 0; i < 2; i++) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toMatch(/^\/interaction\//);
    }
    // …but once the answer has gone back, replaying the same authorization URL is refused.
    await citizenApproves(demo.portalUrl, url);
    ledger.granted++;
    const again = await fetch(url, { redirect: 'manual' });
    expect(again.status).toBe(400);
    expect(again.headers.get('location')).toBeNull();
    expect(await again.text()).toContain('Код ошибки: invalid_request_uri');
  });

  // ------------------------------------------------------- client authentication

  it('7. a client assertion signed by another key, with HS256 or unsigned → invalid_client', async () => {
    const realKey = signingKey;
    const { privateKey: otherKey } = await generateKeyPair('ES256');

    // Positive control: the hand-made request with the partner's real key is accepted.
    const ok = await rawPar(await assertion({ alg: 'ES256', kid: signingKid }, realKey));
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);

    // Through openid-client: the partner's kid, someone else's key.
    const impostor = configFor(
      rp.info.client_id,
      client.PrivateKeyJwt({ key: otherKey, kid: signingKid }),
    );
    await expect(par({}, impostor)).rejects.toMatchObject({ error: 'invalid_client', status: 401 });

    const hmacSecret = new TextEncoder().encode('a-secret-the-portal-never-agreed-to-use!');
    const refused = {
      'another key': await assertion({ alg: 'ES256', kid: signingKid }, otherKey),
      HS256: await assertion({ alg: 'HS256' }, hmacSecret),
      'HS256 with the partner kid': await assertion({ alg: 'HS256', kid: signingKid }, hmacSecret),
      'alg none': new UnsecuredJWT({ sub: rp.info.client_id, jti: client.randomState() })
        .setIssuer(rp.info.client_id)
        .setAudience(issuer)
        .setExpirationTime('1m')
        .encode(),
      'expired, real key': await assertion({ alg: 'ES256', kid: signingKid }, realKey, {
        iat: Math.floor(Date.now() / 1000) - 600,
        exp: Math.floor(Date.now() / 1000) - 300,
      }),
      'for another audience, real key': await assertion(
        { alg: 'ES256', kid: signingKid },
        realKey,
        { aud: 'https://elsewhere.example/' },
      ),
    };
    for (const [name, jwt] of Object.entries(refused)) {
      const res = await rawPar(jwt);
      expect(res.status, name).toBe(401);
      expect(res.body, name).toMatchObject({ error: 'invalid_client' });
      expect(res.body, name).not.toHaveProperty('request_uri');
    }
  });

  // -------------------------------------------------------------- data API

  it("8. one partner's code and token are useless to another partner", async () => {
    const portalPort = new URL(demo.portalUrl).port;
    const dirB = path.join(dataDir, 'partner-b');
    const { clientId } = await partnerAdd({
      portalAdminUrl: `http://127.0.0.1:${portalPort}`,
      adminToken: readAdminToken(dataDir, 'portal'),
      name: 'Другой банк',
      redirectUris: ['http://localhost:9/callback'],
      out: dirB,
    });
    const rpB = await partnerClient(dirB);
    closers.push(rpB.close);
    expect(clientId).not.toBe(rp.info.client_id);

    // B tries to redeem A's code: invalid_grant, and A's code is still A's.
    const { url, codeVerifier, state } = await par();
    const { callback } = await citizenApproves(demo.portalUrl, url);
    ledger.granted++;
    await expect(
      client.authorizationCodeGrant(rpB.config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: 'invalid_grant', status: 400 });
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    const sub = tokens.claims()!.sub;

    // A's token over B's certificate.
    const stolen = await read(rpB, `/rs/prns/${sub}`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    expect(stolen.status).toBe(401);
    expect(stolen.body).toMatchObject({ code: 'TOKEN_CERTIFICATE_MISMATCH' });
    expect(stolen.body).not.toHaveProperty('lastName');
    // The same token on A's own connection works: the refusal was about the certificate.
    const own = await read(rp, `/rs/prns/${sub}`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    expect(own.status).toBe(200);
    ledger.reads++;
  });

  it('9. forged, expired and future-dated tokens, and a genuine one with its signature altered → TOKEN_INVALID', async () => {
    const { tokens, sub } = await genuine();
    const [h, p, s] = tokens.access_token.split('.') as [string, string, string];
    const genuineClaims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const portalKid = (JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string }).kid;
    const { privateKey: forgerKey } = await generateKeyPair('ES256');
    const now = Math.floor(Date.now() / 1000);
    // Everything right (issuer, audience, typ, the portal's kid, a real consent and the
    // partner's cnf) except the signing key.
    const forge = (claims: Record<string, unknown>) =>
      new SignJWT({ ...genuineClaims, ...claims })
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: portalKid })
        .sign(forgerKey);

    // Flip one signature character in the middle (the last one may carry only padding bits).
    const i = Math.floor(s.length / 2);
    const altered = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const cases = {
      'expired, forged': await forge({ iat: now - 3600, exp: now - 1800 }),
      'issued in the future, forged': await forge({ iat: now + 3600, exp: now + 4200 }),
      'genuine, signature altered': altered,
      'genuine, signature removed': `${h}.${p}.`,
    };
    for (const [name, token] of Object.entries(cases)) {
      const res = await read(rp, `/rs/prns/${sub}`, { authorization: `Bearer ${token}` });
      expect(res.status, name).toBe(401);
      expect(res.body, name).toMatchObject({ code: 'TOKEN_INVALID' });
      expect(res.wwwAuthenticate, name).toContain('invalid_token');
    }
    // Control: the untouched token is accepted, so the cases above fail on their fault alone.
    const ok = await read(rp, `/rs/prns/${sub}`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    expect(ok.status).toBe(200);
    ledger.reads++;
  });

  it('10. no client certificate, or one from another CA: the TLS handshake fails', async () => {
    const { tokens, sub } = await genuine();
    const anonymous = await partnerClient(path.join(dataDir, 'bank-partner'), {
      withCertificate: false,
    });
    closers.push(anonymous.close);
    // The listener drops the connection in the handshake: no HTTP response at all. (TLS 1.3
    // finishes the client's side first, so undici sees the socket closed or reset, or the
    // certificate_required alert, depending on timing.)
    const handshakeRefused = {
      message: 'fetch failed',
      cause: { code: expect.stringMatching(/^(UND_ERR_SOCKET|ECONNRESET|EPIPE|ERR_SSL_)/) },
    };
    await expect(
      anonymous.request(`${mtlsUrl}/rs/prns/${sub}`, {
        authorization: `Bearer ${tokens.access_token}`,
      }),
    ).rejects.toMatchObject(handshakeRefused);
    await expect(anonymous.request(`${mtlsUrl}/status`)).rejects.toMatchObject(handshakeRefused);

    // A certificate for the same CSR shape, issued by a CA the portal does not trust.
    const foreignCa = await createCertificateAuthority({
      commonName: 'Not the portal',
      validityDays: 2,
    });
    const authority = await loadCertificateAuthority(foreignCa.certPem, foreignCa.keyPem);
    const csr = await createCertificateSigningRequest({ commonName: 'partner', organization: 'X' });
    const cert = await authority.issueClientCertificate({ csrPem: csr.csrPem, validityDays: 1 });
    const foreign = new Agent({
      connect: { ca: partnerFile('ca.pem'), cert: cert.certPem, key: csr.keyPem },
    });
    closers.push(() => foreign.close());
    await expect(undiciFetch(`${mtlsUrl}/status`, { dispatcher: foreign })).rejects.toMatchObject(
      handshakeRefused,
    );
    // Control: the partner's own certificate gets through the same door.
    const status = await rp.request(`${mtlsUrl}/status`);
    expect(status.status).toBe(200);
  });

  it('11. a token anywhere but a Bearer Authorization header → TOKEN_MISSING', async () => {
    const { tokens, sub } = await genuine();
    const basic = Buffer.from(`${rp.info.client_id}:${tokens.access_token}`).toString('base64');
    const cases: [string, string, Record<string, string>][] = [
      ['Basic', `/rs/prns/${sub}`, { authorization: `Basic ${basic}` }],
      ['query string', `/rs/prns/${sub}?access_token=${tokens.access_token}`, {}],
      ['other header', `/rs/prns/${sub}`, { 'x-access-token': tokens.access_token }],
    ];
    for (const [name, resource, headers] of cases) {
      const res = await read(rp, resource, headers);
      expect(res.status, name).toBe(401);
      expect(res.body, name).toMatchObject({ code: 'TOKEN_MISSING' });
      expect(res.wwwAuthenticate, name).toMatch(/^Bearer/);
    }
    // A certificate-bound token dressed up as a DPoP one: refused as what it is not.
    const dpop = await read(rp, `/rs/prns/${sub}`, {
      authorization: `DPoP ${tokens.access_token}`,
    });
    expect(dpop.status).toBe(401);
    expect(dpop.body).toMatchObject({ code: 'TOKEN_NOT_DPOP_BOUND' });
  });

  // ------------------------------------------------------------- the citizen

  it('12. the citizen presses «Отказать»: access_denied with iss, no code, no way back', async () => {
    const { url, codeVerifier, state } = await par();
    const { browser, page, uid } = await citizenAtConsent(url);
    expect(page).toContain('data-testid="consent-deny"');
    const denied = await browser.request(`/interaction/${uid}/deny`, {
      form: { _csrf: HttpClient.csrf(page) },
    });
    ledger.denied++;
    const callback = await followToCallback(browser, denied);
    expect(callback.origin + callback.pathname).toBe(rp.info.redirect_uris[0]);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    expect(callback.searchParams.get('iss')).toBe(issuer);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.has('code')).toBe(false);
    await expect(
      client.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
      }),
    ).rejects.toMatchObject({ error: 'access_denied' });

    // Changing one's mind by replaying the finished interaction does not work.
    const confirm = await browser.request(`/interaction/${uid}/confirm`, {
      form: new URLSearchParams({ _csrf: HttpClient.csrf(page), scope: 'fullname' }),
    });
    expect(confirm.status).toBe(400);
    expect(confirm.body).toContain('Срок действия запроса на доступ истёк');
  });

  it('13. a wrong one-time code on the consent → 401, and the right code still works', async () => {
    const { url, codeVerifier, state } = await par();
    const { browser, page, uid } = await citizenAtConsent(url);
    const form = new URLSearchParams({ _csrf: HttpClient.csrf(page) });
    for (const s of DETAILS[0]!.scopes) form.append('scope', s);
    const codePage = await browser.request(`/interaction/${uid}/confirm`, { form });
    expect(codePage.status).toBe(200);
    expect(codePage.body).toContain(`action="/interaction/${uid}/approve"`);
    const right = await outboxCode(PHONE);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');

    const refused = await browser.request(`/interaction/${uid}/approve`, {
      form: { _csrf: HttpClient.csrf(codePage.body), code: wrong },
    });
    ledger.codeFailed++;
    expect(refused.status).toBe(401);
    expect(refused.body).toContain('Неверный или устаревший код');
    expect(refused.location).toBeNull(); // no redirect, so no code went to the partner

    // One wrong try (of the three a code survives) does not kill it.
    const approved = await browser.request(`/interaction/${uid}/approve`, {
      form: { _csrf: HttpClient.csrf(refused.body), code: right },
    });
    ledger.granted++;
    const callback = await followToCallback(browser, approved);
    expect(callback.searchParams.get('code')).toBeTruthy();
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    const res = await read(rp, `/rs/prns/${tokens.claims()!.sub}`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    expect(res.status).toBe(200);
    ledger.reads++;
  });

  // -------------------------------------------------------------- the ledger

  it('leaves nothing behind: after shutdown the ledger holds only what was let through', async () => {
    await demo.stop();
    const database = await openDatabase<unknown>({
      name: 'portal',
      dataDir: path.join(dataDir, 'portal-db'),
    });
    try {
      const count = async (query: string, value: string) =>
        (await sql<{ n: number }>`${sql.raw(query)} ${value}`.execute(database.db)).rows[0]!.n;
      const consents = await count(
        'select count(*)::int as n from consents where client_id =',
        rp.info.client_id,
      );
      const others = await count(
        'select count(*)::int as n from consents where client_id <>',
        rp.info.client_id,
      );
      const audit = (action: string) =>
        count('select count(*)::int as n from audit_log where action =', action);
      expect({
        consents,
        others,
        granted: await audit('consent.granted'),
        denied: await audit('consent.denied'),
        codeFailed: await audit('consent.code_failed'),
        reads: await audit('data.read'),
      }).toEqual({
        consents: ledger.granted,
        others: 0,
        granted: ledger.granted,
        denied: ledger.denied,
        codeFailed: ledger.codeFailed,
        reads: ledger.reads,
      });
    } finally {
      await database.close();
    }
  });
});
