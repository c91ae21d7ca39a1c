import path from 'node:path';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoWithTestPartner } from '../support/partner-sandbox.js';
import type { ReceivedEvent } from '../support/webhook-receiver.js';
import { testEngines } from '../support/databases.js';
import { HttpClient, type DemoProcess } from '../support/demo-process.js';
import { E2E_DETAILS, outboxCode, partnerClient } from '../support/partner-client.js';

const PASSWORD = 'Demo-Passw0rd!';
const CONSENT_GRANT = 'urn:soglasie:grant-type:consent';

/** A citizen's browser session on the portal, logged in with password and SMS code. */
async function citizen(portalUrl: string, phone = '+79990000001') {
  const browser = new HttpClient(portalUrl);
  const loginPage = await browser.request('/login');
  const res = await browser.request('/login', {
    form: { _csrf: HttpClient.csrf(loginPage.body), username: phone, password: PASSWORD },
  });
  const codePage = await browser.request(res.location!);
  await browser.request('/login/code', {
    form: { _csrf: HttpClient.csrf(codePage.body), code: await outboxCode(portalUrl, phone) },
  });
  return browser;
}

/** A bank customer's session (password + SMS code) and their client number from the profile. */
async function bankCustomer(bankUrl: string, username: string, phone: string) {
  const browser = new HttpClient(bankUrl);
  const loginPage = await browser.request('/login');
  const res = await browser.request('/login', {
    form: { _csrf: HttpClient.csrf(loginPage.body), username, password: PASSWORD },
  });
  const codePage = await browser.request(res.location!);
  await browser.request('/login/code', {
    form: { _csrf: HttpClient.csrf(codePage.body), code: await outboxCode(bankUrl, phone) },
  });
  const profile = await browser.request('/profile');
  const clientNumber = /data-testid="bank-client-number">([^<]+)</.exec(profile.body)?.[1];
  expect(clientNumber).toMatch(/^\d{6}$/);
  return { browser, clientNumber: clientNumber! };
}

/** J1 on the portal: pick the partner, type the client id, approve, confirm with the code. */
async function connect(
  browser: HttpClient,
  portalUrl: string,
  clientId: string,
  clientRef: string,
  phone = '+79990000001',
) {
  const start = await browser.request(`/access/connect/${clientId}`);
  expect(start.status).toBe(200);
  const consentPage = await browser.request(`/access/connect/${clientId}`, {
    form: { _csrf: HttpClient.csrf(start.body), client_ref: clientRef },
  });
  expect(consentPage.status).toBe(200);
  const form = new URLSearchParams({ _csrf: HttpClient.csrf(consentPage.body) });
  for (const m of consentPage.body.matchAll(/name="scope" value="([a-z_]+)"/g))
    form.append('scope', m[1]!);
  const codePage = await browser.request(`/access/connect/${clientId}/confirm`, { form });
  expect(codePage.status).toBe(200);
  const done = await browser.request(`/access/connect/${clientId}/approve`, {
    form: { _csrf: HttpClient.csrf(codePage.body), code: await outboxCode(portalUrl, phone) },
  });
  expect(done.status).toBe(303);
  return { consentPage: consentPage.body };
}

/** The status text of one partner's row on «Управление доступом». */
async function rowOf(browser: HttpClient, clientId: string) {
  const page = (await browser.request('/access')).body;
  const start = page.indexOf(`data-testid="connection-${clientId}"`);
  if (start < 0) return undefined;
  const row = page.slice(start, page.indexOf('</section>', start));
  return {
    status: /data-testid="connection-status">([^<]*)</.exec(row)?.[1],
    failure: /data-testid="connection-failure">([^<]*)</.exec(row)?.[1],
    row,
  };
}

describe.each(testEngines())('J1: connect a partner from the portal [$name]', (engine) => {
  let sandbox: Awaited<ReturnType<typeof demoWithTestPartner>>;
  let demo: DemoProcess;
  let rp: Awaited<ReturnType<typeof partnerClient>>;
  let bank: Awaited<ReturnType<typeof partnerClient>>;
  let mtlsUrl: string;
  let received: ReceivedEvent[] = [];

  beforeAll(async () => {
    sandbox = await demoWithTestPartner(engine, { name: 'j1' });
    ({ demo, rp, mtlsUrl, received } = sandbox);
    bank = await partnerClient(path.join(sandbox.dataDir, 'bank-partner'));
  }, 90_000);

  afterAll(async () => {
    await bank?.close();
    await sandbox?.close();
  });

  const granted = async () => {
    await expect
      .poll(() => received.filter((e) => e.type === 'consent.granted').length, { timeout: 15_000 })
      .toBeGreaterThan(0);
    return received.filter((e) => e.type === 'consent.granted').pop()!.data;
  };
  const consentOf = async (consentId: string) => {
    const res = await rp.request(`${mtlsUrl}/partner/consents/${consentId}`, {
      accept: 'application/json',
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const take = (consentId: string, who = rp) =>
    client.genericGrantRequest(who.config, CONSENT_GRANT, { consent_id: consentId });
  const read = (token: string, url: string) =>
    client.fetchProtectedResource(rp.config, token, new URL(url), 'GET', undefined);

  it('lists the partners that accept it, shows the consent screen with the typed id and real values, and waits for the partner', async () => {
    const browser = await citizen(demo.portalUrl);
    const list = await browser.request('/access/connect');
    expect(list.body).toContain(`data-testid="connect-${rp.info.client_id}"`);
    expect(list.body).toContain('Тестовый банк');

    received.length = 0;
    const { consentPage } = await connect(browser, demo.portalUrl, rp.info.client_id, 'Д-4217');
    expect(consentPage).toContain('Номер договора');
    expect(consentPage).toContain('Д-4217');
    expect(consentPage).toContain('Оформление дебетовой карты');
    expect(consentPage).toContain('Иванов');
    expect((await rowOf(browser, rp.info.client_id))?.status).toBe('Ожидает подтверждения сервиса');

    // The partner is told, signed, that a citizen connected it from the portal.
    const event = await granted();
    expect(event).toMatchObject({ origin: 'portal', status: 'pending' });
    const consentId = String(event.consent_id);
    const seen = await consentOf(consentId);
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ origin: 'portal', status: 'pending', client_ref: 'Д-4217' });

    // Another partner cannot see it or take a token for it.
    const foreign = await bank.request(`${mtlsUrl}/partner/consents/${consentId}`);
    expect(foreign.status).toBe(404);
    await expect(take(consentId, bank)).rejects.toMatchObject({ error: 'invalid_grant' });

    // The consent grant: a certificate-bound token for exactly this consent, no browser.
    const tokens = await take(consentId);
    expect(tokens.token_type.toLowerCase()).toBe('bearer');
    expect(tokens.refresh_token).toBeTruthy();
    const claims = JSON.parse(
      Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString(),
    ) as Record<string, unknown>;
    expect(claims.consent_id).toBe(consentId);
    expect((claims.cnf as Record<string, string>)['x5t#S256']).toBeTruthy();
    const person = await read(
      tokens.access_token,
      `${mtlsUrl}/rs/prns/${String(seen.body.subject)}`,
    );
    expect(person.status).toBe(200);
    expect(await person.json()).toMatchObject({ lastName: 'Иванов', firstName: 'Иван' });
    expect((await rowOf(browser, rp.info.client_id))?.status).toBe('Активно');
    expect((await rowOf(browser, rp.info.client_id))?.row).toContain(
      'Сервис подтвердил подключение',
    );

    // Its refresh token works like any other.
    const fresh = await client.refreshTokenGrant(rp.config, tokens.refresh_token!);
    expect(fresh.access_token).toBeTruthy();
  });

  it('the demo bank matches its customer by client number, takes the token and shows «Доступ предоставлен»', async () => {
    const ivanov = await bankCustomer(demo.bankUrl, 'ivanov', '+79990000001');
    const petrova = await bankCustomer(demo.bankUrl, 'petrova', '+79990000002');
    const browser = await citizen(demo.portalUrl);
    const bankId = bank.info.client_id;
    expect((await browser.request('/access/connect')).body).toContain(`connect-${bankId}`);

    // Someone else's client number: the bank refuses to file Иванов's data under Петрова.
    await connect(browser, demo.portalUrl, bankId, petrova.clientNumber);
    await expect
      .poll(async () => (await rowOf(browser, bankId))?.failure, { timeout: 15_000 })
      .toBe('Данные клиента в сервисе не совпадают с данными Госуслуг');
    expect((await petrova.browser.request('/security/portal/status.json')).body).toContain(
      '"linked":false',
    );

    // A number the bank does not have.
    await connect(browser, demo.portalUrl, bankId, '999999');
    await expect
      .poll(async () => (await rowOf(browser, bankId))?.failure, { timeout: 15_000 })
      .toBe('Сервис не нашёл клиента с таким идентификатором');

    // The right one: «Активно» on the portal, «Доступ предоставлен» at the bank, no redirect.
    await connect(browser, demo.portalUrl, bankId, ivanov.clientNumber);
    await expect
      .poll(async () => (await rowOf(browser, bankId))?.status, { timeout: 15_000 })
      .toBe('Активно');
    // The bank files the data right after taking the token.
    await expect
      .poll(async () => (await ivanov.browser.request('/security')).body, { timeout: 15_000 })
      .toContain('Доступ предоставлен');
    const security = await ivanov.browser.request('/security');
    expect(security.body).toContain('Иванов');

    // Paused on the portal: the bank keeps the data and says reads are paused; resumed: back.
    const status = async () =>
      (
        JSON.parse((await ivanov.browser.request('/security/portal/status.json')).body) as {
          status: string;
        }
      ).status;
    const activePage = await browser.request('/access');
    const activeId = /action="\/access\/([0-9a-f-]{36})\/pause"/.exec(
      activePage.body.slice(activePage.body.indexOf(`connection-${bankId}`)),
    )![1]!;
    await browser.request(`/access/${activeId}/pause`, {
      form: { _csrf: HttpClient.csrf(activePage.body) },
    });
    await expect.poll(status, { timeout: 15_000 }).toContain('Доступ приостановлен');
    const gosuslugi = await ivanov.browser.request('/gosuslugi');
    const tested = await ivanov.browser.request('/gosuslugi/test', {
      form: { _csrf: HttpClient.csrf(gosuslugi.body) },
    });
    expect(tested.body).toContain('Вы приостановили доступ банка на Госуслугах');
    await browser.request(`/access/${activeId}/resume`, {
      form: { _csrf: HttpClient.csrf(activePage.body) },
    });
    await expect.poll(status, { timeout: 15_000 }).toContain('Доступ предоставлен');

    // And revoking it on the portal empties the bank's vault again (J5).
    const page = await browser.request('/access');
    const consentId = /action="\/access\/([0-9a-f-]{36})\/revoke"/.exec(
      page.body.slice(page.body.indexOf(`connection-${bankId}`)),
    )![1]!;
    const confirm = await browser.request(`/access/${consentId}/revoke`, {
      form: { _csrf: HttpClient.csrf(page.body) },
    });
    await browser.request(`/access/${consentId}/revoke/confirm`, {
      form: {
        _csrf: HttpClient.csrf(confirm.body),
        code: await outboxCode(demo.portalUrl, '+79990000001'),
      },
    });
    await expect
      .poll(async () => (await ivanov.browser.request('/security/portal/status.json')).body, {
        timeout: 15_000,
      })
      .toContain('"linked":false');
    await expect
      .poll(async () => (await rowOf(browser, bankId))?.row, { timeout: 15_000 })
      .toContain('Сервис подтвердил удаление данных');
  });

  it('a client id the partner does not know ends in «Не выполнено» with the reason', async () => {
    const browser = await citizen(demo.portalUrl);
    received.length = 0;
    await connect(browser, demo.portalUrl, rp.info.client_id, 'НЕТ-ТАКОГО');
    const consentId = String((await granted()).consent_id);
    const res = await rp.post(`${mtlsUrl}/partner/consents/${consentId}/connection-result`, {
      result: 'rejected',
      reason: 'CUSTOMER_NOT_FOUND',
    });
    expect(res.status).toBe(200);
    const row = await rowOf(browser, rp.info.client_id);
    expect(row?.status).toBe('Не выполнено');
    expect(row?.failure).toBe('Сервис не нашёл клиента с таким идентификатором');
    // Nothing can be taken any more; the identifier is no longer shown to the partner.
    await expect(take(consentId)).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await consentOf(consentId)).body).toMatchObject({
      status: 'revoked',
      client_ref: null,
    });
  });

  it('refuses a malformed client id with a Russian sentence, and a partner without J1 is not offered', async () => {
    const browser = await citizen(demo.portalUrl);
    const start = await browser.request(`/access/connect/${rp.info.client_id}`);
    const bad = await browser.request(`/access/connect/${rp.info.client_id}`, {
      form: { _csrf: HttpClient.csrf(start.body), client_ref: '<script>alert(1)</script>' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('до 64 букв и цифр');
    expect(bad.body).not.toContain('<script>alert');
    expect((await browser.request('/access/connect/partner-unknown')).status).toBe(404);
  });

  it('pause stops reads at once and resume restores them; the partner hears of both', async () => {
    const browser = await citizen(demo.portalUrl);
    received.length = 0;
    await connect(browser, demo.portalUrl, rp.info.client_id, 'Д-5000');
    const consentId = String((await granted()).consent_id);
    const subject = String((await consentOf(consentId)).body.subject);
    const tokens = await take(consentId);
    const url = `${mtlsUrl}/rs/prns/${subject}`;
    expect((await read(tokens.access_token, url)).status).toBe(200);

    const page = await browser.request('/access');
    const csrf = HttpClient.csrf(page.body);
    expect(
      (await browser.request(`/access/${consentId}/pause`, { form: { _csrf: csrf } })).status,
    ).toBe(200);
    const paused = await read(tokens.access_token, url);
    expect(paused.status).toBe(403);
    expect(await paused.json()).toMatchObject({ code: 'CONSENT_PAUSED' });
    expect((await rowOf(browser, rp.info.client_id))?.status).toBe('Приостановлено');

    expect(
      (await browser.request(`/access/${consentId}/resume`, { form: { _csrf: csrf } })).status,
    ).toBe(200);
    expect((await read(tokens.access_token, url)).status).toBe(200);
    // Deliveries are concurrent (Standard Webhooks promise no order): order by `timestamp`.
    await expect
      .poll(
        () =>
          received
            .filter((e) => e.data.consent_id === consentId)
            .sort((a, b) => a.timestamp.localeCompare(b.timestamp))
            .map((e) => e.type),
        { timeout: 15_000 },
      )
      .toEqual(['consent.granted', 'consent.paused', 'consent.resumed']);
  });

  it('a consent tied to a product application ends when the partner closes the application', async () => {
    // The partner's own flow (J2) with an application reference.
    const { pushedAuthorization, citizenApproves } = await import('../support/partner-client.js');
    const details = [{ ...E2E_DETAILS[0]!, application_ref: 'APP-77' }];
    const codeVerifier = client.randomPKCECodeVerifier();
    const url = await client.buildAuthorizationUrlWithPAR(rp.config, {
      redirect_uri: rp.info.redirect_uris[0]!,
      scope: 'openid fullname birthdate snils inn id_doc addresses contacts orders',
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: 'app-77',
      authorization_details: JSON.stringify(details),
    });
    void pushedAuthorization;
    const { callback } = await citizenApproves(demo.portalUrl, url);
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: 'app-77',
    });
    const personUrl = `${mtlsUrl}/rs/prns/${tokens.claims()!.sub}`;
    expect((await read(tokens.access_token, personUrl)).status).toBe(200);

    const closed = await rp.post(`${mtlsUrl}/partner/applications/APP-77/closed`, {});
    expect(closed.status).toBe(200);
    expect(((await closed.json()) as { ended: string[] }).ended).toHaveLength(1);
    const after = await read(tokens.access_token, personUrl);
    expect(after.status).toBe(403);
    // Another partner's application of the same name is not this one.
    expect(
      (
        (await (await bank.post(`${mtlsUrl}/partner/applications/APP-77/closed`, {})).json()) as {
          ended: string[];
        }
      ).ended,
    ).toEqual([]);
  });
});
