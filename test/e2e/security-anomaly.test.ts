import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoWithTestPartner } from '../support/partner-sandbox.js';
import type { ReceivedEvent } from '../support/webhook-receiver.js';
import { testEngines } from '../support/databases.js';
import { HttpClient, type DemoProcess } from '../support/demo-process.js';
import {
  citizenApproves,
  outboxCode,
  partnerClient,
  pushedAuthorization,
} from '../support/partner-client.js';

/*
 * Issue 5, items 2 and 3 against the running demo: a one-time code confirms only the
 * operation it was sent for (login, consent, revocation, connection), and an anomaly
 * (reads far too frequent, another person's data) pauses the consent at once while the
 * partner receives a signed `security.alert` and the analyst sees it in the security center.
 * The demo runs with `anomaly-rules.json` in its data directory: 5 reads a minute at most.
 */

const PASSWORD = 'Demo-Passw0rd!';
const PHONE = '+79990000001';
const MAX_READS = 5;
/** The `security` persona (security analyst). */
const ANALYST_PHONE = '+79990000010';

describe.each(testEngines())('Security of codes and anomaly detection [$name]', (engine) => {
  let sandbox: Awaited<ReturnType<typeof demoWithTestPartner>>;
  let demo: DemoProcess;
  let rp: Awaited<ReturnType<typeof partnerClient>>;
  let mtlsUrl: string;
  let received: ReceivedEvent[] = [];

  beforeAll(async () => {
    sandbox = await demoWithTestPartner(engine, {
      name: 'security',
      prepare: (dataDir) =>
        writeFileSync(
          path.join(dataDir, 'anomaly-rules.json'),
          JSON.stringify({ rules: { request_frequency: { maxReadsPerMinute: MAX_READS } } }),
        ),
    });
    ({ demo, rp, mtlsUrl, received } = sandbox);
  }, 90_000);

  afterAll(async () => {
    await sandbox?.close();
  });

  /** A browser after the password step: the login code is on its way. */
  async function passwordOnly(username = PHONE) {
    const browser = new HttpClient(demo.portalUrl);
    const page = await browser.request('/login');
    const res = await browser.request('/login', {
      form: { _csrf: HttpClient.csrf(page.body), username, password: PASSWORD },
    });
    const codePage = await browser.request(res.location!);
    return { browser, codePage };
  }

  async function citizen(phone = PHONE, username = phone) {
    const { browser, codePage } = await passwordOnly(username);
    const done = await browser.request('/login/code', {
      form: {
        _csrf: HttpClient.csrf(codePage.body),
        code: await outboxCode(demo.portalUrl, phone),
      },
    });
    expect(done.location).toBe('/profile');
    return browser;
  }

  /** The newest code sent to the citizen for this kind of operation (by the SMS subject). */
  async function codeFor(subject: string, to = PHONE) {
    const res = await fetch(`${demo.portalUrl}/dev/outbox?to=${encodeURIComponent(to)}`);
    const messages = (await res.json()) as { subject: string; code?: string }[];
    return messages.find((m) => m.subject === subject && m.code)!.code!;
  }

  /** J1 up to the code page: the connection code is sent. */
  async function connectUntilCode(browser: HttpClient, clientRef: string) {
    const clientId = rp.info.client_id;
    const start = await browser.request(`/access/connect/${clientId}`);
    const screen = await browser.request(`/access/connect/${clientId}`, {
      form: { _csrf: HttpClient.csrf(start.body), client_ref: clientRef },
    });
    const form = new URLSearchParams({ _csrf: HttpClient.csrf(screen.body) });
    for (const m of screen.body.matchAll(/name="scope" value="([a-z_]+)"/g))
      form.append('scope', m[1]!);
    const codePage = await browser.request(`/access/connect/${clientId}/confirm`, { form });
    expect(codePage.status).toBe(200);
    return codePage;
  }

  const approveConnect = (browser: HttpClient, page: string, code: string) =>
    browser.request(`/access/connect/${rp.info.client_id}/approve`, {
      form: { _csrf: HttpClient.csrf(page), code },
    });

  /** The partner's authorization request up to the portal's consent code page. */
  async function consentUntilCode(browser: HttpClient) {
    const { url } = await pushedAuthorization(rp);
    let res = await browser.request(url.href);
    while (res.status === 303 || res.status === 302) res = await browser.request(res.location!);
    expect(res.body).toContain('data-testid="consent-approve"');
    const confirm = /action="(\/interaction\/[^"]+\/confirm)"/.exec(res.body)![1]!;
    const form = new URLSearchParams({ _csrf: HttpClient.csrf(res.body) });
    for (const m of res.body.matchAll(/name="scope" value="([a-z_]+)"/g))
      form.append('scope', m[1]!);
    const codePage = await browser.request(confirm, { form });
    const approve = /action="(\/interaction\/[^"]+\/approve)"/.exec(codePage.body)![1]!;
    return { codePage: codePage.body, approve };
  }

  it('takes a one-time code only for the operation it was sent for', async () => {
    const browser = await citizen();

    // A connection to revoke, and its revocation code.
    const first = await connectUntilCode(browser, 'Д-7001');
    expect(
      (await approveConnect(browser, first.body, await codeFor('Код подтверждения подключения')))
        .status,
    ).toBe(303);
    const access = await browser.request('/access');
    const row = access.body.slice(access.body.indexOf(`connection-${rp.info.client_id}`));
    const consentId = /action="\/access\/([0-9a-f-]{36})\/revoke"/.exec(row)![1]!;
    const revokePage = await browser.request(`/access/${consentId}/revoke`, {
      form: { _csrf: HttpClient.csrf(access.body) },
    });
    const revokeCode = await codeFor('Код для отключения доступа');
    const revoke = (code: string) =>
      browser.request(`/access/${consentId}/revoke/confirm`, {
        form: { _csrf: HttpClient.csrf(revokePage.body), code },
      });

    // Another connection waiting for its code; a login waiting for its code; a consent
    // (the partner's authorization request) waiting for its code.
    const second = await connectUntilCode(browser, 'Д-7002');
    const connectCode = await codeFor('Код подтверждения подключения');
    const other = await passwordOnly();
    const loginCode = await codeFor('Код для входа');
    const consent = await consentUntilCode(browser);
    const consentCode = await codeFor('Код подтверждения доступа');
    const approveConsent = (code: string) =>
      browser.request(consent.approve, {
        form: { _csrf: HttpClient.csrf(consent.codePage), code },
      });
    const codes = [revokeCode, connectCode, loginCode, consentCode];
    if (new Set(codes).size < codes.length) return; // equal random codes: nothing to prove

    // Each code tried on another operation is refused (four failures: under the lock of five).
    expect((await approveConnect(browser, second.body, revokeCode)).status).toBe(401);
    expect((await revoke(connectCode)).status).toBe(401);
    expect((await approveConsent(loginCode)).status).toBe(401);
    expect((await approveConsent(revokeCode)).status).toBe(401);
    // Each works for its own.
    const approved = await approveConsent(consentCode);
    expect(approved.status).toBe(303);
    let next = approved;
    while (next.location && !next.location.startsWith('https://partner.example/'))
      next = await browser.request(next.location);
    expect(next.location).toMatch(/^https:\/\/partner\.example\/cb\?code=/);
    expect((await revoke(loginCode)).status).toBe(401);
    const revoked = await revoke(revokeCode);
    expect(revoked.status).toBe(200);
    expect(revoked.body).toContain('отключён');
    expect((await approveConnect(browser, second.body, connectCode)).status).toBe(303);
    const loggedIn = await other.browser.request('/login/code', {
      form: { _csrf: HttpClient.csrf(other.codePage.body), code: loginCode },
    });
    expect(loggedIn.location).toBe('/profile');
  });

  /** A consent by the partner's own authorization request, and its certificate-bound token. */
  async function authorize() {
    const { url, codeVerifier, state } = await pushedAuthorization(rp);
    const { callback } = await citizenApproves(demo.portalUrl, url);
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    const claims = JSON.parse(
      Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString(),
    ) as { consent_id: string; sub: string };
    return { tokens, consentId: claims.consent_id, sub: claims.sub };
  }

  const read = async (token: string, resource: string) => {
    const res = await client.fetchProtectedResource(
      rp.config,
      token,
      new URL(`${mtlsUrl}${resource}`),
      'GET',
      undefined,
      new Headers({ accept: 'application/json' }),
    );
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const alertFor = async (consentId: string, code: string) => {
    await expect
      .poll(
        () =>
          received.some(
            (e) =>
              e.type === 'security.alert' &&
              e.data.consent_id === consentId &&
              e.data.code === code,
          ),
        { timeout: 15_000 },
      )
      .toBe(true);
    return received.find((e) => e.type === 'security.alert' && e.data.consent_id === consentId)!
      .data;
  };

  it('pauses a consent read far too often; the partner gets security.alert, the analyst sees it', async () => {
    const { tokens, consentId, sub } = await authorize();
    for (let i = 0; i < MAX_READS; i++) {
      expect((await read(tokens.access_token, `/rs/prns/${sub}`)).status).toBe(200);
    }
    const hit = await read(tokens.access_token, `/rs/prns/${sub}`);
    expect(hit.status).toBe(403);
    expect(hit.body).toMatchObject({ code: 'ANOMALY_DETECTED' });
    expect(hit.body).not.toHaveProperty('lastName');
    const after = await read(tokens.access_token, `/rs/prns/${sub}`);
    expect(after.status).toBe(403);
    expect(after.body).toMatchObject({ code: 'CONSENT_PAUSED' });

    const alert = await alertFor(consentId, 'REQUEST_FREQUENCY');
    expect(alert).toMatchObject({
      severity: 'high',
      consent_status: 'paused',
      actions: ['consent_paused'],
      details: { reads: MAX_READS + 1, threshold: MAX_READS, window_seconds: 60 },
    });
    await expect
      .poll(() =>
        received.some((e) => e.type === 'consent.paused' && e.data.consent_id === consentId),
      )
      .toBe(true);

    // The analyst sees it in the security center; the citizen can resume.
    const room = await citizen(ANALYST_PHONE, 'security');
    const center = await room.request('/security-center');
    expect(center.status).toBe(200);
    expect(center.body).toContain('data-alert-code="REQUEST_FREQUENCY"');
    expect(center.body).toContain(`согласие ${consentId}`);
    const ivanov = await citizen();
    const access = await ivanov.request('/access');
    expect(access.body).toContain(`action="/access/${consentId}/resume"`);
    await ivanov.request(`/access/${consentId}/resume`, {
      form: { _csrf: HttpClient.csrf(access.body) },
    });
    // Resumed: the rule stays quiet for its cool-down (the citizen trusts the partner).
    expect((await read(tokens.access_token, `/rs/prns/${sub}/docs`)).status).toBe(200);
  });

  it('pauses a consent used to ask for another person, and says so to the partner', async () => {
    const { tokens, consentId, sub } = await authorize();
    const other = await read(tokens.access_token, '/rs/prns/someone-else');
    expect(other.status).toBe(404);
    expect(other.body).toMatchObject({ code: 'SUBJECT_MISMATCH' });
    const alert = await alertFor(consentId, 'SUBJECT_MISMATCH');
    expect(alert).toMatchObject({ consent_status: 'paused', actions: ['consent_paused'] });
    const own = await read(tokens.access_token, `/rs/prns/${sub}`);
    expect(own.status).toBe(403);
    expect(own.body).toMatchObject({ code: 'CONSENT_PAUSED' });
  });
});
