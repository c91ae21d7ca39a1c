import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import { Browser, codeFromOutbox, testPortal } from '../../../test/support/services.js';
import { DEMO_PASSWORD, PORTAL_PERSONAS } from '../personas.js';

/*
 * The security center (J11) over HTTP: only for the `security` role; alerts of the anomaly
 * rules, citizens whose login they blocked (with «Разблокировать»), the audit log with
 * filters; and the live stream (Server-Sent Events) read over a real socket.
 */

const IVANOV = PORTAL_PERSONAS[0]!.personal;
const ANALYST = PORTAL_PERSONAS.find((p) => p.username === 'security')!.personal;
const RU = '77.88.8.8';
const DE = '193.99.144.80';

describeEachEngine('security center', (engine) => {
  let svc: Awaited<ReturnType<typeof testPortal>>;

  beforeEach(async () => {
    svc = await testPortal(engine);
  });
  afterEach(async () => {
    await svc.close();
  });

  async function logIn(username: string, phone: string, ip?: string) {
    const browser = new Browser(svc.app);
    browser.remoteAddress = ip;
    await browser.get('/login');
    const password = await browser.post('/login', { username, password: DEMO_PASSWORD });
    if (password.statusCode !== 303) return { browser, result: password };
    await browser.follow(password);
    const result = await browser.post('/login/code', {
      code: await codeFromOutbox(svc.app, phone),
    });
    return { browser, result };
  }

  const analyst = async () => (await logIn('security', ANALYST.phone)).browser;

  /** Ivanov logs in from Russia, then from Germany 30 minutes later: the rule blocks him. */
  async function impossibleTravel() {
    const first = await logIn(IVANOV.phone, IVANOV.phone, RU);
    expect(first.result.headers.location).toBe('/profile');
    svc.clock.advance(30 * 60_000);
    const second = await logIn(IVANOV.phone, IVANOV.phone, DE);
    expect(second.result.statusCode).toBe(403);
    expect(second.result.body).toContain('Вход временно заблокирован службой безопасности');
    return first.browser;
  }

  it('is for security analysts only', async () => {
    const { browser: citizen } = await logIn(IVANOV.phone, IVANOV.phone);
    for (const url of ['/security-center', '/security-center/stream']) {
      const res = await citizen.get(url);
      expect(res.statusCode, url).toBe(403);
      expect(res.body, url).toContain('только сотрудникам');
    }
    const anonymous = await svc.app.inject({
      url: '/security-center/stream',
      headers: { accept: 'text/event-stream' },
    });
    expect(anonymous.statusCode).toBe(401);
    const page = await (await analyst()).get('/security-center');
    expect(page.statusCode).toBe(200);
    for (const id of [
      'security-alerts',
      'security-sessions',
      'audit-stream',
      'audit-filter-actor',
      'audit-filter-action',
      'audit-filter-subject',
      'audit-filter-submit',
    ]) {
      expect(page.body, id).toContain(`data-testid="${id}"`);
    }
    expect(page.body).toContain('href="/security-center/blocks"');
    // Live without inline script: a script of our own origin, and the stream it opens.
    expect(page.body).toContain('<script src="/assets/security-center-live.js" defer');
    expect(page.body).not.toMatch(/<script>(?!<\/script>)/);
    expect(page.body).toMatch(
      /data-security-live="\/security-center\/stream\?alerts_after=\d+&amp;audit_after=\d+"/,
    );
    expect(String(page.headers['content-security-policy'])).toContain("script-src 'self'");
    const script = await svc.app.inject({ url: '/assets/security-center-live.js' });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toContain('text/javascript');
    expect(script.body).toContain('EventSource');
    expect(script.body).not.toContain('innerHTML');
  });

  it('shows an alert and the blocked login, and «Разблокировать» lets the citizen in again', async () => {
    const ivanovFromRussia = await impossibleTravel();
    // His other session ended with the block.
    expect((await ivanovFromRussia.get('/profile')).headers.location).toBe('/login');

    const room = await analyst();
    const page = await room.get('/security-center');
    expect(page.body).toContain('data-alert-code="IMPOSSIBLE_TRAVEL"');
    expect(page.body).toContain('Невозможное перемещение');
    expect(page.body).toContain(
      'Вход из страны «Германия» (DE) через 30 мин после входа из страны «Россия» (RU)',
    );
    expect(page.body).toContain('вход заблокирован, сеансы завершены');
    expect(page.body).toContain(`IP ${DE}`);
    const sessions = page.body.slice(page.body.indexOf('data-testid="security-sessions"'));
    expect(sessions).toContain('data-testid="security-session"');
    expect(sessions).toContain('Иванов И. И. (+7 999 ***-**-01)');
    expect(sessions).not.toContain(IVANOV.snils);

    const blockId = /action="\/security-center\/sessions\/([0-9a-f-]+)\/unblock"/.exec(
      page.body,
    )![1]!;
    // Without the form's token nothing happens.
    const forged = await room.post(
      `/security-center/sessions/${blockId}/unblock`,
      {},
      { csrf: false },
    );
    expect(forged.statusCode).toBe(403);
    await room.get('/security-center');
    const unblocked = await room.post(`/security-center/sessions/${blockId}/unblock`, {});
    expect(unblocked.statusCode).toBe(200);
    expect(unblocked.body).toContain('Вход разблокирован.');
    expect(unblocked.body).toContain('Заблокированных входов нет.');
    // The unblock is on record, by the analyst.
    const audit = await room.get('/security-center?action=security.session_unblocked');
    expect(audit.body).toMatch(/<code>security:[0-9a-f-]+<\/code>/);

    svc.clock.advance(60_000);
    const again = await logIn(IVANOV.phone, IVANOV.phone, DE);
    expect(again.result.headers.location).toBe('/profile');

    // A citizen cannot unblock anyone.
    const citizen = (await logIn(IVANOV.phone, IVANOV.phone)).browser;
    await citizen.get('/profile');
    expect(
      (await citizen.post(`/security-center/sessions/${blockId}/unblock`, {})).statusCode,
    ).toBe(403);
  });

  it('filters the audit log by actor, action and subject prefix, and escapes what it shows', async () => {
    await impossibleTravel();
    const room = await analyst();
    const rows = (body: string) =>
      [...body.matchAll(/<tr data-testid="audit-entry">([\s\S]*?)<\/tr>/g)].map((m) => m[1]!);

    const all = rows((await room.get('/security-center')).body);
    expect(all.length).toBeGreaterThan(3);
    const alerts = rows((await room.get('/security-center?action=security.')).body);
    expect(alerts.length).toBeGreaterThan(0);
    for (const row of alerts) expect(row).toMatch(/<code>security\./);
    const bySystem = rows((await room.get('/security-center?actor=system%3Aanomaly')).body);
    expect(bySystem.length).toBeGreaterThan(0);
    for (const row of bySystem) expect(row).toContain('<code>system:anomaly</code>');
    const logins = rows((await room.get('/security-center?action=login.&subject=citizen%3A')).body);
    expect(logins.length).toBeGreaterThan(0);
    for (const row of logins) expect(row).toMatch(/<code>login\.[a-z_]+<\/code>/);
    // Wildcards are taken literally; what was typed comes back escaped.
    const none = await room.get(
      '/security-center?actor=%25&subject=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
    );
    expect(rows(none.body)).toHaveLength(0);
    expect(none.body).not.toContain('<script>alert(1)');
    expect(none.body).toContain('value="&lt;script>alert(1)&lt;/script>"');
  });

  it('streams alerts and audit entries as Server-Sent Events', async () => {
    await impossibleTravel();
    const room = await analyst();
    await svc.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(svc.app.server.address() as AddressInfo).port}`;

    const stream = async (query: string) => {
      const abort = new AbortController();
      const res = await fetch(`${base}/security-center/stream?${query}`, {
        headers: { accept: 'text/event-stream', cookie: room.cookieHeader },
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let buffer = '';
      /** The next event (comments and the retry line skipped). */
      const next = async () => {
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const fields = Object.fromEntries(
              block
                .split('\n')
                .filter((l) => !l.startsWith(':') && l.includes(': '))
                .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
            );
            if (fields.event) return fields as { id: string; event: string; data: string };
            continue;
          }
          const { value, done } = await reader.read();
          if (done) throw new Error('the stream ended');
          buffer += decoder.decode(value, { stream: true });
        }
      };
      return { res, next, close: () => abort.abort() };
    };

    // From the beginning: the alerts come first (oldest first), then the audit entries.
    const replay = await stream('alerts_after=0&audit_after=0');
    try {
      expect(replay.res.status).toBe(200);
      expect(replay.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(replay.res.headers.get('cache-control')).toBe('no-store');
      const first = await replay.next();
      expect(first.event).toBe('alert');
      expect(first.id).toMatch(/^\d+\.0$/);
      expect(JSON.parse(first.data)).toMatchObject({
        code: 'IMPOSSIBLE_TRAVEL',
        rule: 'Невозможное перемещение',
        severityLabel: 'высокая',
        actions: 'вход заблокирован, сеансы завершены; гражданин уведомлён',
      });
      let event = await replay.next();
      while (event.event === 'alert') event = await replay.next();
      expect(event.event).toBe('audit');
      expect(JSON.parse(event.data)).toMatchObject({ seq: '1' });
    } finally {
      replay.close();
    }

    // Live: only what happens after the page was drawn, filtered as asked.
    const page = (await room.get('/security-center?action=security.')).body;
    const url = /data-security-live="([^"]+)"/.exec(page)![1]!.replaceAll('&amp;', '&');
    const live = await stream(url.slice(url.indexOf('?') + 1));
    try {
      const blockId = /\/security-center\/sessions\/([0-9a-f-]+)\/unblock/.exec(page)![1]!;
      await room.post(`/security-center/sessions/${blockId}/unblock`, {});
      const pushed = await live.next();
      expect(pushed.event).toBe('audit');
      expect(JSON.parse(pushed.data)).toMatchObject({ action: 'security.session_unblocked' });
    } finally {
      live.close();
    }
  });
});
