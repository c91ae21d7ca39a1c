import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { insertLink } from '../../../test/support/bank-links.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { Browser, codeFromOutbox, testBank } from '../../../test/support/services.js';
import { recordAad, serializeSealed } from '../../platform/crypto/index.js';
import { DEMO_PASSWORD } from '../personas.js';
import { createPortalEventStore, type PortalEventTables } from './portal-events.store.js';
import type { LinkState } from './portal-link.service.js';
import type { PortalLinkTables } from './portal-link.store.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const PHONE = '+79990000001';
const CONSENT = 'consent-0000-abcdef123456';

/** J5 at the bank: the view follows the link by itself, and the customer is told. */
describeEachEngine('bank: the live portal link status and the customer’s notice (J5)', (engine) => {
  let svc: Awaited<ReturnType<typeof testBank>>;
  let browser: Browser;
  let customerId: string;

  beforeEach(async () => {
    svc = await testBank(engine);
    await createPortalEventStore(
      svc.runtime.db as unknown as Kysely<PortalEventTables>,
    ).saveSubscription({
      endpoint_id: 'ep_1',
      secret: serializeSealed(
        await svc.runtime.sealer.seal(SECRET, recordAad('portal_webhook', 'portal', 'secret')),
      ),
      registered_at: svc.clock.now(),
    });
    customerId = (await svc.app.customers.findIdByUsername('ivanov'))!;
    browser = new Browser(svc.app);
    await browser.get('/login');
    await browser.follow(
      await browser.post('/login', { username: 'ivanov', password: DEMO_PASSWORD }),
    );
    await browser.post('/login/code', { code: await codeFromOutbox(svc.app, PHONE) });
  });
  afterEach(async () => {
    await svc.close();
  });

  const deliver = (id: string, type: string, consentId = CONSENT) => {
    const at = new Date();
    const payload = JSON.stringify({
      type,
      timestamp: at.toISOString(),
      data: { consent_id: consentId },
    });
    return svc.app.inject({
      method: 'POST',
      url: '/webhooks/portal',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(SECRET).sign(id, at, payload),
      },
      payload,
    });
  };
  const status = async () => {
    const res = await svc.app.inject({
      method: 'GET',
      url: '/security/portal/status.json',
      headers: { accept: 'application/json', cookie: browser.cookieHeader },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    return { body: res.body, json: res.json() as LinkState };
  };
  const outbox = async () =>
    (
      await svc.app.inject({ method: 'GET', url: `/dev/outbox?to=${encodeURIComponent(PHONE)}` })
    ).json() as { subject: string; text: string; channel: string; code?: string }[];
  const db = () => svc.runtime.db as unknown as Kysely<PortalLinkTables>;

  it('status.json gives the link state only, to the signed-in customer; the pages carry the live script', async () => {
    const anonymous = await svc.app.inject({
      method: 'GET',
      url: '/security/portal/status.json',
      headers: { accept: 'application/json' },
    });
    expect(anonymous.statusCode).toBe(401);

    expect((await status()).json).toEqual({
      linked: false,
      consent: null,
      status: 'Профиль не связан с Госуслугами',
      state: 'not-linked',
    });

    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const { json, body } = await status();
    expect(json).toMatchObject({ linked: true, consent: '…123456' });
    expect(json.status).toMatch(/^Доступ предоставлен до \d\d\.\d\d\.\d{4}$/);
    expect(json.state).not.toBe('not-linked');
    // No personal data: neither the bank's nor the portal's.
    for (const value of ['Иванов', 'Иван', '79990000001', 'sub-1', 'fullname', CONSENT])
      expect(body).not.toContain(value);

    for (const path of ['/security', '/gosuslugi']) {
      const page = await browser.get(path);
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('data-portal-live="/security/portal/status.json"');
      expect(page.body).toContain(`data-portal-state="${json.state}"`);
      expect(page.body).toContain(`data-portal-then="${path}"`);
      expect(page.body).toContain('<script src="/assets/portal-link-live.js" defer');
      // CSP: no inline script, and scripts from the bank's own origin only.
      expect(page.body).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
      expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
    }

    const script = await svc.app.inject({ method: 'GET', url: '/assets/portal-link-live.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('text/javascript');
    expect(script.body).toContain('data-portal-live');
  });

  it('consent.revoked: the data goes, status.json changes, the customer gets an SMS, a notice once and a history line', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const before = (await status()).json.state;

    expect((await deliver('msg_1', 'consent.revoked')).statusCode).toBe(204);
    expect(await db().selectFrom('portal_links').selectAll().execute()).toHaveLength(0);
    expect(
      await db()
        .selectFrom('portal_link_events')
        .select(['customer_id', 'consent_id', 'kind', 'seen_at'])
        .execute(),
    ).toEqual([{ customer_id: customerId, consent_id: CONSENT, kind: 'revoked', seen_at: null }]);

    const after = (await status()).json;
    expect(after).toMatchObject({ linked: false, state: 'not-linked' });
    expect(after.state).not.toBe(before);

    const [newest] = await outbox();
    expect(newest).toMatchObject({ channel: 'sms', subject: 'Доступ к Госуслугам отключён' });
    expect(newest!.text).toBe(
      'Банк: доступ к данным Госуслуг отключён. Банк удалил полученные с портала данные.',
    );
    expect(newest!.code).toBeUndefined();

    const first = await browser.get('/security');
    expect(first.body).toContain('data-testid="portal-link-notice"');
    expect(first.body).toContain(
      'Доступ к данным Госуслуг отключён: согласие отозвано на Госуслугах',
    );
    expect(first.body).toContain('Доступ отозван на Госуслугах 01.12.2026, 12:00; данные удалены');
    expect(first.body).toContain('Профиль не связан с Госуслугами.');

    // Shown once; the history stays, on the security page and in the profile.
    const second = await browser.get('/security');
    expect(second.body).not.toContain('data-testid="portal-link-notice"');
    expect(second.body).toContain('Доступ отозван на Госуслугах 01.12.2026, 12:00; данные удалены');
    const profile = await browser.get('/profile');
    expect(profile.body).not.toContain('data-testid="portal-link-notice"');
    expect(profile.body).toContain('data-testid="portal-link-history"');
    expect(profile.body).toContain(
      'Доступ отозван на Госуслугах 01.12.2026, 12:00; данные удалены',
    );
    // J12: the export holds the history too.
    expect((await browser.get('/profile/data/export.json')).json()).toMatchObject({
      gosuslugi: null,
      gosuslugi_history: [
        { consent_id: CONSENT, event: 'revoked', at: '2026-12-01T09:00:00.000Z' },
      ],
    });
  });

  it('consent.expired: its own message and notice; a redelivery tells the customer nothing twice', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const sent = async () =>
      (await outbox()).filter((m) => m.subject === 'Доступ к Госуслугам отключён');
    expect((await deliver('msg_2', 'consent.expired')).statusCode).toBe(204);
    expect((await sent()).map((m) => m.text)).toEqual([
      'Банк: срок согласия на Госуслугах истёк, доступ к данным отключён. Банк удалил полученные с портала данные.',
    ]);
    expect((await deliver('msg_2', 'consent.expired')).statusCode).toBe(200);
    // Another delivery id for the same, already deleted consent: nothing left, nobody told.
    expect((await deliver('msg_3', 'consent.expired')).statusCode).toBe(204);
    expect(await sent()).toHaveLength(1);

    const profile = await browser.get('/profile');
    expect(profile.body).toContain(
      'Доступ к данным Госуслуг отключён: срок согласия на Госуслугах истёк',
    );
    expect(profile.body).toContain(
      'Срок согласия на Госуслугах истёк 01.12.2026, 12:00; данные удалены',
    );
  });

  it('a notice about a consent that a newer link has replaced is not shown', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    await deliver('msg_4', 'consent.revoked');
    svc.clock.advance(60_000);
    await insertLink(svc.runtime, svc.clock, customerId, 'consent-0000-fedcba654321');
    const page = await browser.get('/security');
    expect(page.body).not.toContain('data-testid="portal-link-notice"');
    expect(page.body).toContain('Доступ предоставлен');
    expect(page.body).toContain('Доступ отозван на Госуслугах');
    expect((await status()).json).toMatchObject({ linked: true, consent: '…654321' });
  });
});
