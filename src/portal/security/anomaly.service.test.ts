import type { Kysely } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import { Browser, codeFromOutbox, testPortal } from '../../../test/support/services.js';
import { createSessionStore, type SessionTables } from '../../platform/http/session.store.js';
import type { WebhookTables } from '../../platform/webhooks/index.js';
import { createCitizenNotices } from '../citizens/confirmation.js';
import type { Consent } from '../consents/consent.js';
import { ScopeNotGrantedError } from '../data-api/resources.js';
import { AccessRefused, type AccessTokenClaims } from '../partner-api/access-checks.js';
import { DEMO_PASSWORD, PORTAL_PERSONAS } from '../personas.js';
import { resolveAnomalyConfig, type AnomalyOverrides } from './anomaly-config.js';
import { createAnomalyService, LOGIN_BLOCKED_MESSAGE } from './anomaly.service.js';
import type { SecurityTables } from './anomaly.store.js';
import { openCountryLookup } from './geo.js';

/*
 * The anomaly rules at work on a real database: what a hit does (pause, block, notices,
 * `security.alert` in the outbox, the audit entry), the frequency counters shared by two
 * instances, and the cool-down that keeps one incident one alert.
 */

const IVANOV = PORTAL_PERSONAS[0]!.personal;
const RU = '77.88.8.8';
const DE = '193.99.144.80';

describeEachEngine('anomaly detection', (engine) => {
  let svc: Awaited<ReturnType<typeof testPortal>>;
  let ivanovId: string;

  beforeEach(async () => {
    svc = await testPortal(engine);
    ivanovId = (await svc.app.citizens.findIdByIdentifier(IVANOV.phone))!;
  });
  afterEach(async () => {
    await svc.close();
  });

  const db = () => svc.runtime.db as unknown as Kysely<SecurityTables & WebhookTables>;

  /** An engine like the app's, with these rules (a second call: a second instance). */
  async function engineWith(overrides: AnomalyOverrides = {}) {
    return createAnomalyService({
      db: db(),
      config: resolveAnomalyConfig(overrides),
      clock: svc.clock,
      ids: svc.runtime.ids,
      sealer: svc.runtime.sealer,
      geo: await openCountryLookup(),
      consents: svc.app.consents,
      webhooks: svc.app.webhooks,
      audit: svc.app.audit,
      sessions: createSessionStore(svc.runtime.db as unknown as Kysely<SessionTables>),
      notifyCitizen: createCitizenNotices({
        citizens: svc.app.citizens,
        notifier: svc.runtime.notifier,
      }),
      partnerName: async (clientId) => `Банк ${clientId}`,
      partnerByThumbprint: async (thumbprint) =>
        thumbprint === 'thumb-b' ? { client_id: 'bank-b', name: 'Банк bank-b' } : undefined,
    });
  }

  const consentFor = (clientId: string) =>
    svc.app.consents.grant({
      citizenId: ivanovId,
      clientId,
      grantId: svc.runtime.ids.uuid(),
      request: {
        type: 'IDENTIFICATION',
        purposes: ['Идентификация'],
        actions: ['READ'],
        scopes: ['fullname'],
        optionalScopes: [],
        durationDays: 30,
      },
      approvedScopes: ['fullname'],
    });

  const claimsOf = (consent: Consent): AccessTokenClaims => ({
    sub: 'pairwise-sub',
    client_id: consent.clientId,
    scope: 'openid fullname',
    consent_id: consent.id,
    jti: 'jti-1',
    cnf: { 'x5t#S256': 'thumb-a' },
  });

  const messages = (eventType: string) =>
    db()
      .selectFrom('webhook_messages')
      .select(['event_type', 'payload'])
      .where('event_type', '=', eventType)
      .execute();
  const alerts = () => db().selectFrom('security_alerts').selectAll().orderBy('seq').execute();
  const auditOf = (action: string) => svc.app.audit.list({ action });

  it('pauses a consent read too often, tells the citizen and the partner, and audits it', async () => {
    const consent = await consentFor('bank-a');
    await svc.app.webhooks.registerEndpoint('bank-a', 'http://127.0.0.1:9/hooks');
    const security = await engineWith({ rules: { request_frequency: { maxReadsPerMinute: 3 } } });
    for (let i = 0; i < 3; i++) await security.checkRead({ consent, ip: RU });
    const refused = await security.checkRead({ consent, ip: RU }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AccessRefused);
    expect(refused).toMatchObject({ code: 'ANOMALY_DETECTED', status: 403 });

    expect((await svc.app.consents.get(consent.id))!.status).toBe('paused');
    const paused = (await svc.app.consents.events(consent.id)).find((e) => e.type === 'paused')!;
    expect(paused.actor).toBe('security');

    const [alert] = await alerts();
    expect(alert).toMatchObject({
      rule: 'request_frequency',
      code: 'REQUEST_FREQUENCY',
      consent_id: consent.id,
      client_id: 'bank-a',
      citizen_id: ivanovId,
      actions: ['consent_paused', 'citizen_notified', 'partner_notified'],
      explanation:
        'Сервис «Банк bank-a» запросил данные по одному согласию 4 раз за минуту (порог — 3).',
    });
    expect(alert!.ip).not.toContain(RU); // sealed
    expect((await security.recentAlerts())[0]!.ip).toBe(RU); // opened for the analyst

    expect(await messages('consent.paused')).toHaveLength(1);
    const [announced] = await messages('security.alert');
    expect(announced!.payload).toMatchObject({
      alert_id: alert!.id,
      code: 'REQUEST_FREQUENCY',
      severity: 'high',
      consent_id: consent.id,
      consent_status: 'paused',
      actions: ['consent_paused'],
      details: { reads: 4, threshold: 3, window_seconds: 60 },
    });
    expect(JSON.stringify(announced!.payload)).not.toContain(ivanovId);

    const notice = svc.runtime.outbox!.list(IVANOV.email!)[0]!;
    expect(notice.subject).toBe('Подозрительная активность сервиса');
    expect(notice.text).toContain('Мы приостановили его доступ');

    const [audited] = await auditOf('security.alert');
    expect(audited).toMatchObject({ actor: 'system:anomaly', subject: `consent:${consent.id}` });
    expect(audited!.details).toMatchObject({ alert: alert!.id, code: 'REQUEST_FREQUENCY' });
    expect(JSON.stringify(audited!.details)).not.toContain(RU);
  });

  it('counts the reads of two instances together', async () => {
    const consent = await consentFor('bank-a');
    const rules = { rules: { request_frequency: { maxReadsPerMinute: 5 } } };
    const one = await engineWith(rules);
    const two = await engineWith(rules);
    for (let i = 0; i < 3; i++) {
      await one.checkRead({ consent, ip: RU });
      await two.checkRead({ consent, ip: RU });
    }
    // Six reads, but each instance has seen three: nothing yet.
    expect(await alerts()).toHaveLength(0);
    // Each adds its reads to the shared counter (at most once a second, in one statement)
    // and learns the total: the second to do so knows of all six.
    await one.flushCounters();
    await two.flushCounters();
    await expect(two.checkRead({ consent, ip: RU })).rejects.toMatchObject({
      code: 'ANOMALY_DETECTED',
    });
    expect((await alerts())[0]!.details).toMatchObject({ reads: 7 });
  });

  it('blocks the sessions of a citizen who logs in from two countries at once, until unblocked', async () => {
    const browser = new Browser(svc.app);
    await browser.get('/login');
    await browser.follow(
      await browser.post('/login', { username: IVANOV.phone, password: DEMO_PASSWORD }),
    );
    await browser.post('/login/code', { code: await codeFromOutbox(svc.app, IVANOV.phone) });
    expect((await browser.get('/profile')).statusCode).toBe(200);

    const security = await engineWith();
    const at = svc.clock.now();
    const first = await security.screenLogin({ accountId: ivanovId, method: 'sms', ip: RU, at });
    expect(first).toEqual({ allow: true });
    svc.clock.advance(40 * 60_000);
    const second = await security.screenLogin({
      accountId: ivanovId,
      method: 'sms',
      ip: DE,
      at: svc.clock.now(),
    });
    expect(second).toEqual({ allow: false, message: LOGIN_BLOCKED_MESSAGE });

    // Every session of his is gone, and the login flow refuses him while blocked.
    expect((await browser.get('/profile')).headers.location).toBe('/login');
    const blocked = new Browser(svc.app);
    await blocked.get('/login');
    const refused = await blocked.post('/login', {
      username: IVANOV.phone,
      password: DEMO_PASSWORD,
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.body).toContain('Вход временно заблокирован службой безопасности');

    const [alert] = await alerts();
    expect(alert).toMatchObject({
      rule: 'impossible_travel',
      citizen_id: ivanovId,
      actions: ['session_blocked', 'citizen_notified'],
      details: { country: 'DE', previous_country: 'RU', minutes_between: 40 },
    });
    expect(svc.runtime.outbox!.list(IVANOV.email!)[0]!.text).toContain(
      'Мы завершили все сеансы и временно заблокировали вход',
    );

    const [block] = await security.activeBlocks();
    expect(block).toMatchObject({ citizen_id: ivanovId, code: 'IMPOSSIBLE_TRAVEL' });
    expect(await security.unblock(block!.id, 'analyst-1')).toBe(true);
    expect(await security.unblock(block!.id, 'analyst-1')).toBe(false);
    expect(await security.isBlocked(ivanovId)).toBeUndefined();
    const [lifted] = await auditOf('security.session_unblocked');
    expect(lifted).toMatchObject({ actor: 'security:analyst-1', subject: `citizen:${ivanovId}` });
    await blocked.get('/login');
    expect(
      (await blocked.post('/login', { username: IVANOV.phone, password: DEMO_PASSWORD })).headers
        .location,
    ).toBe('/login/code');
  });

  it('a block ends by itself after the configured time', async () => {
    const security = await engineWith({ sessionBlockHours: 2 });
    await security.screenLogin({ accountId: ivanovId, method: 'sms', ip: RU, at: svc.clock.now() });
    svc.clock.advance(60_000);
    await security.screenLogin({ accountId: ivanovId, method: 'sms', ip: DE, at: svc.clock.now() });
    expect(await security.isBlocked(ivanovId)).toBeDefined();
    svc.clock.advance(2 * 3_600_000);
    expect(await security.isBlocked(ivanovId)).toBeUndefined();
  });

  it('tells the citizen of a login from a new device, and lets it through', async () => {
    const security = await engineWith();
    const login = (deviceHash: string) =>
      security.screenLogin({
        accountId: ivanovId,
        method: 'sms',
        ip: '127.0.0.1',
        deviceHash,
        at: svc.clock.now(),
      });
    expect(await login('a'.repeat(64))).toEqual({ allow: true }); // the first ever: nothing to compare
    expect(await login('a'.repeat(64))).toEqual({ allow: true });
    expect(await alerts()).toHaveLength(0);
    expect(await login('b'.repeat(64))).toEqual({ allow: true });
    const [alert] = await alerts();
    expect(alert).toMatchObject({ rule: 'new_device', actions: ['citizen_notified'] });
    expect(svc.runtime.outbox!.list(IVANOV.email!)[0]!.subject).toBe('Вход с нового устройства');
  });

  it('turns parameter mismatches on refused reads into alerts, as their rules say', async () => {
    const consent = await consentFor('bank-a');
    await svc.app.webhooks.registerEndpoint('bank-a', 'http://127.0.0.1:9/hooks');
    const security = await engineWith();
    const claims = claimsOf(consent);

    // Another client's certificate: bank-a is told; the consent stays (the token is useless).
    await security.onRefused(
      new AccessRefused('TOKEN_CERTIFICATE_MISMATCH', 401, 'another certificate'),
      { claims, ip: DE, peerThumbprint: 'thumb-b' },
    );
    expect((await svc.app.consents.get(consent.id))!.status).toBe('active');
    const [stolen] = await alerts();
    expect(stolen).toMatchObject({
      code: 'TOKEN_CERTIFICATE_MISMATCH',
      client_id: 'bank-a',
      actions: ['partner_notified'],
    });
    expect(stolen!.explanation).toContain('«Банк bank-b»');

    // Beyond the consent: an alert, once within the cool-down.
    const beyond = new ScopeNotGrantedError('docs', 'id_doc');
    await security.onRefused(beyond, { claims, ip: DE });
    await security.onRefused(beyond, { claims, ip: DE });
    expect((await alerts()).filter((a) => a.code === 'SCOPE_BEYOND_CONSENT')).toHaveLength(1);
    svc.clock.advance(11 * 60_000);
    await security.onRefused(beyond, { claims, ip: DE });
    expect((await alerts()).filter((a) => a.code === 'SCOPE_BEYOND_CONSENT')).toHaveLength(2);

    // Another person in the path: the consent is paused.
    await security.onRefused(new AccessRefused('SUBJECT_MISMATCH', 404, 'no such person'), {
      claims,
      ip: DE,
    });
    expect((await svc.app.consents.get(consent.id))!.status).toBe('paused');
    expect(
      (await messages('security.alert')).map((m) => (m.payload as { code: string }).code),
    ).toEqual(
      expect.arrayContaining([
        'TOKEN_CERTIFICATE_MISMATCH',
        'SCOPE_BEYOND_CONSENT',
        'SUBJECT_MISMATCH',
      ]),
    );

    // Other refusals, or a refusal before the token was read, are not anomalies.
    const before = (await alerts()).length;
    await security.onRefused(new AccessRefused('TOKEN_EXPIRED', 401, 'expired'), {
      claims,
      ip: DE,
    });
    await security.onRefused(new AccessRefused('SUBJECT_MISMATCH', 404, 'x'), {
      claims: undefined,
      ip: DE,
    });
    expect(await alerts()).toHaveLength(before);
  });

  it('runs no rule that is disabled', async () => {
    const consent = await consentFor('bank-a');
    const security = await engineWith({
      rules: {
        request_frequency: { enabled: false, maxReadsPerMinute: 1 },
        subject_mismatch: { enabled: false },
      },
    });
    for (let i = 0; i < 5; i++) await security.checkRead({ consent, ip: RU });
    await security.onRefused(new AccessRefused('SUBJECT_MISMATCH', 404, 'x'), {
      claims: claimsOf(consent),
      ip: RU,
    });
    expect(await alerts()).toHaveLength(0);
    expect((await svc.app.consents.get(consent.id))!.status).toBe('active');
  });
});
