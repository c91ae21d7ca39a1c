import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookReceiver } from '../support/webhook-receiver.js';
import { freshPostgresUrl, testEngines } from '../support/databases.js';
import { HttpClient, startDemo, type DemoProcess } from '../support/demo-process.js';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import { readAdminToken } from '../../src/platform/runtime/admin-token.js';
import {
  citizenApproves,
  E2E_SCOPES as SCOPES,
  outboxCode,
  partnerClient,
  pushedAuthorization,
} from '../support/partner-client.js';

describe.each(testEngines())(
  'FAPI 2.0 with a real OpenID client against the running demo [$name]',
  (engine) => {
    let dataDir: string;
    let demo: DemoProcess;
    let rp: Awaited<ReturnType<typeof partnerClient>>;
    let mtlsUrl: string;
    let databases: { url: string; drop(): Promise<void> }[] = [];

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-fapi-'));
      const env: Record<string, string> = { SOGLASIE_DATA_DIR: dataDir };
      if (engine.name === 'postgres') {
        databases = [await freshPostgresUrl(), await freshPostgresUrl()];
        env.PORTAL_DATABASE_URL = databases[0]!.url;
        env.BANK_DATABASE_URL = databases[1]!.url;
      }
      demo = await startDemo(env);
      rp = await partnerClient(path.join(dataDir, 'bank-partner'));
      mtlsUrl = new URL(rp.info.mtls_endpoints.token_endpoint!).origin;
    }, 90_000);

    afterAll(async () => {
      await rp?.close();
      if (demo?.child.exitCode === null) await demo.stop();
      rmSync(dataDir, { recursive: true, force: true });
      for (const database of databases) await database.drop();
    });

    const authorizationUrl = () => pushedAuthorization(rp);

    async function authorize(uncheck: string[] = []) {
      const { url, codeVerifier, state } = await authorizationUrl();
      const { callback, consentPage } = await citizenApproves(demo.portalUrl, url, { uncheck });
      const tokens = await client.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: codeVerifier,
        expectedState: state,
      });
      return { tokens, callback, consentPage, codeVerifier, state };
    }

    const get = (token: string, resource: string, accept = 'application/json') =>
      client.fetchProtectedResource(
        rp.config,
        token,
        new URL(`${mtlsUrl}${resource}`),
        'GET',
        undefined,
        new Headers({ accept }),
      );

    it('PAR → login → consent → code → token → data over mTLS, only the consented fields', async () => {
      const { tokens, callback, consentPage } = await authorize(['orders']);
      expect(callback.searchParams.get('iss')).toBe(rp.info.issuer);
      expect(consentPage).toContain('Банк');
      expect(consentPage).toContain('Оформление дебетовой карты');

      const sub = tokens.claims()!.sub;
      const person = await get(tokens.access_token, `/rs/prns/${sub}`);
      expect(person.status).toBe(200);
      const body = (await person.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ oid: sub, lastName: 'Иванов', firstName: 'Иван' });
      expect(body.snils).toMatch(/^\d{3}-\d{3}-\d{3} \d{2}$/);
      expect(body).not.toHaveProperty('gender'); // not requested

      const docs = await get(tokens.access_token, `/rs/prns/${sub}/docs`);
      expect(docs.status).toBe(200);
      // Unticked on the consent screen: refused, whatever the token's scope says.
      const orders = await get(tokens.access_token, `/rs/prns/${sub}/orders`);
      expect(orders.status).toBe(403);
      expect(await orders.json()).toMatchObject({ code: 'SCOPE_NOT_GRANTED' });

      const xml = await get(tokens.access_token, `/rs/prns/${sub}/addrs`, 'application/xml');
      expect(xml.headers.get('content-type')).toContain('application/xml');
      expect(await xml.text()).toContain('urn:soglasie:data-api:1');
    });

    it('access tokens are JWTs that carry the consent and are bound to the certificate', async () => {
      const { tokens } = await authorize();
      const [, payload] = tokens.access_token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<
        string,
        unknown
      >;
      expect(claims.consent_id).toMatch(/^[0-9a-f-]{36}$/);
      expect((claims.cnf as Record<string, string>)['x5t#S256']).toBeTruthy();
      expect(tokens.token_type.toLowerCase()).toBe('bearer');

      // The same token presented without the certificate it is bound to.
      const stranger = await partnerClient(path.join(dataDir, 'bank-partner'), {
        withCertificate: false,
      });
      await expect(
        stranger.request(`${mtlsUrl}/rs/prns/${tokens.claims()!.sub}`, {
          authorization: `Bearer ${tokens.access_token}`,
        }),
      ).rejects.toThrow();
      await stranger.close();
    });

    it('DPoP (RFC 9449): a DPoP-bound token reads only with a fresh proof from its key', async () => {
      // A partner registered for DPoP-bound tokens (FAPI 2.0 allows either constraint).
      const dir = path.join(dataDir, 'dpop-partner');
      await partnerAdd({
        portalAdminUrl: demo.portalUrl.replace('localhost', '127.0.0.1'),
        adminToken: readAdminToken(dataDir, 'portal'),
        name: 'Банк с DPoP',
        redirectUris: ['http://localhost:4999/callback'],
        out: dir,
        senderConstraint: 'dpop',
      });
      const dpopRp = await partnerClient(dir);
      try {
        const dpop = client.getDPoPHandle(dpopRp.config, await client.randomDPoPKeyPair('ES256'));
        const codeVerifier = client.randomPKCECodeVerifier();
        const state = client.randomState();
        const url = await client.buildAuthorizationUrlWithPAR(
          dpopRp.config,
          {
            redirect_uri: 'http://localhost:4999/callback',
            scope: SCOPES,
            code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
            code_challenge_method: 'S256',
            state,
          },
          { DPoP: dpop },
        );
        const { callback } = await citizenApproves(demo.portalUrl, url);
        const tokens = await client.authorizationCodeGrant(
          dpopRp.config,
          callback,
          { pkceCodeVerifier: codeVerifier, expectedState: state },
          undefined,
          { DPoP: dpop },
        );
        expect(tokens.token_type.toLowerCase()).toBe('dpop');
        const resource = new URL(`${mtlsUrl}/rs/prns/${tokens.claims()!.sub}`);
        const read = (handle: client.DPoPHandle) =>
          client
            .fetchProtectedResource(
              dpopRp.config,
              tokens.access_token,
              resource,
              'GET',
              undefined,
              undefined,
              {
                DPoP: handle,
              },
            )
            .catch((err: { response?: Response }) => err.response!);
        const first = await read(dpop);
        expect(first.status).toBe(200);
        // As a plain Bearer token, without a proof: refused.
        const bearer = await dpopRp.request(resource.href, {
          authorization: `Bearer ${tokens.access_token}`,
        });
        expect(bearer.status).toBe(401);
        expect(await bearer.json()).toMatchObject({ code: 'DPOP_REQUIRED' });
        // With a proof from another key: refused.
        const other = client.getDPoPHandle(dpopRp.config, await client.randomDPoPKeyPair('ES256'));
        const stolen = await read(other);
        expect(stolen.status).toBe(401);
        expect(await stolen.json()).toMatchObject({ code: 'DPOP_KEY_MISMATCH' });
      } finally {
        await dpopRp.close();
      }
    });

    it('J9: Петрова is stopped until she confirms her e-mail, then she connects', async () => {
      const phone = '+79990000002';
      const browser = new HttpClient(demo.portalUrl);
      const first = await authorizationUrl();
      const stopped = (await citizenApproves(demo.portalUrl, first.url, { phone, browser }).catch(
        (err: unknown) => err,
      )) as { status?: number; body?: string };
      expect(stopped.status).toBe(409);
      expect(stopped.body).toContain('data-testid="readiness-EMAIL_UNCONFIRMED"');
      expect(stopped.body).toContain('Электронная почта не подтверждена.');

      // «Личные данные» → confirm the e-mail with the code sent to it.
      const profile = await browser.request('/profile');
      const sent = await browser.request('/profile/email/send-code', {
        form: { _csrf: HttpClient.csrf(profile.body) },
      });
      const confirmed = await browser.request('/profile/email/confirm', {
        form: {
          _csrf: HttpClient.csrf(sent.body),
          code: await outboxCode(demo.portalUrl, 'petrova@example.test'),
        },
      });
      expect(confirmed.body).toContain('Электронная почта подтверждена.');

      const second = await authorizationUrl();
      const { callback } = await citizenApproves(demo.portalUrl, second.url, { phone, browser });
      const tokens = await client.authorizationCodeGrant(rp.config, callback, {
        pkceCodeVerifier: second.codeVerifier,
        expectedState: second.state,
      });
      const person = await get(tokens.access_token, `/rs/prns/${tokens.claims()!.sub}`);
      expect(await person.json()).toMatchObject({ lastName: 'Петрова' });
    });

    it('webhooks: a subscribed partner gets consent.granted and consent.revoked, signed (Standard Webhooks)', async () => {
      const receiver = await webhookReceiver();
      const { received } = receiver;
      try {
        const secret = await receiver.subscribe(rp.post, mtlsUrl);
        expect(secret).toMatch(/^whsec_/);

        const { tokens } = await authorize();
        const consentId = (tokens.authorization_details as unknown as { consent_id: string }[])[0]!
          .consent_id;
        await client.tokenRevocation(rp.config, tokens.refresh_token!, {
          token_type_hint: 'refresh_token',
        });
        await expect
          .poll(
            () =>
              // Standard Webhooks promises no order: compare by the events' own times.
              received
                .filter((e) => e.data.consent_id === consentId)
                .sort((a, b) => a.timestamp.localeCompare(b.timestamp))
                .map((e) => e.type),
            { timeout: 15_000 },
          )
          .toEqual(['consent.granted', 'consent.revoked']);
        expect(receiver.forged()).toBe(0);
        // The revoked consent's token no longer reads.
        const after = await get(tokens.access_token, `/rs/prns/${tokens.claims()!.sub}`);
        expect(after.status).toBe(403);
      } finally {
        await receiver.close();
      }
    });

    it('deletion receipts: only for an ended consent, only signed with the partner’s own key', async () => {
      const { tokens } = await authorize();
      const consentId = (tokens.authorization_details as unknown as { consent_id: string }[])[0]!
        .consent_id;
      const partnerKey = JSON.parse(
        readFileSync(path.join(dataDir, 'bank-partner', 'signing-key.jwk.json'), 'utf8'),
      ) as JWK;
      const receipt = async (key: CryptoKey, kid: string) =>
        new SignJWT({
          consent_id: consentId,
          deleted: ['fullname'],
          deleted_at: new Date().toISOString(),
        })
          .setProtectedHeader({ alg: 'ES256', kid, typ: 'deletion-receipt+jwt' })
          .setIssuer(rp.info.client_id)
          .setAudience(rp.info.issuer)
          .setIssuedAt()
          .setJti(crypto.randomUUID())
          .sign(key);
      const send = async (jws: string) =>
        rp.post(`${mtlsUrl}/partner/consents/${consentId}/deletion-receipt`, { receipt: jws });
      const genuine = await receipt(
        (await importJWK(partnerKey, 'ES256')) as CryptoKey,
        partnerKey.kid!,
      );

      const early = await send(genuine);
      expect(early.status).toBe(409); // the consent is still active
      await client.tokenRevocation(rp.config, tokens.refresh_token!, {
        token_type_hint: 'refresh_token',
      });
      const { privateKey } = await generateKeyPair('ES256');
      const forged = await send(await receipt(privateKey, partnerKey.kid!));
      expect(forged.status).toBe(400);
      expect(await forged.json()).toMatchObject({ code: 'RECEIPT_INVALID' });
      expect((await send(genuine)).status).toBe(201);
      expect((await send(genuine)).status).toBe(200); // once only
    });

    it('each partner sees its own pairwise subject, and another oid is not found', async () => {
      const { tokens } = await authorize();
      const res = await get(tokens.access_token, `/rs/prns/someone-else`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: 'SUBJECT_MISMATCH' });
    });

    it('a code works once', async () => {
      const { callback, codeVerifier, state } = await authorize();
      await expect(
        client.authorizationCodeGrant(rp.config, callback, {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
        }),
      ).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('refuses a token that is missing, tampered or signed with alg none', async () => {
      const { tokens } = await authorize();
      const sub = tokens.claims()!.sub;
      const [h, p, s] = tokens.access_token.split('.');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${p}.`;
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'x' })).toString('base64url')}.${s}`;
      for (const token of [none, tampered]) {
        const res = await rp.request(`${mtlsUrl}/rs/prns/${sub}`, {
          authorization: `Bearer ${token}`,
        });
        expect(res.status).toBe(401);
      }
      const missing = await rp.request(`${mtlsUrl}/rs/prns/${sub}`);
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ code: 'TOKEN_MISSING' });
    });

    it('refuses an authorization request that did not come through PAR', async () => {
      const res = await fetch(
        `${demo.portalUrl}/auth?client_id=${rp.info.client_id}&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(rp.info.redirect_uris[0]!)}&code_challenge=abc&code_challenge_method=S256`,
        { redirect: 'manual' },
      );
      expect([302, 303, 400]).toContain(res.status);
      const where = res.headers.get('location') ?? '';
      expect(where + (res.status === 400 ? await res.text() : '')).toMatch(
        /invalid_request|request_uri/,
      );
    });
  },
);
