import { afterEach, beforeEach, expect, it } from 'vitest';
import { currentTotp } from '../../platform/otp/totp.js';
import { Browser, codeFromOutbox, testPortal } from '../../../test/support/services.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { DEMO_PASSWORD, PORTAL_PERSONAS } from '../personas.js';

const IVANOV = PORTAL_PERSONAS[0]!.personal;

describeEachEngine('portal login and personal data', (engine) => {
  let svc: Awaited<ReturnType<typeof testPortal>>;
  let browser: Browser;

  beforeEach(async () => {
    svc = await testPortal(engine);
    browser = new Browser(svc.app);
  });
  afterEach(async () => {
    await svc.close();
  });

  async function passwordStep(username: string, password = DEMO_PASSWORD) {
    await browser.get('/login');
    return browser.post('/login', { username, password });
  }

  async function logIn(username: string) {
    const res = await passwordStep(username);
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/login/code');
    await browser.follow(res);
    const code = await codeFromOutbox(svc.app, IVANOV.phone);
    return browser.post('/login/code', { code });
  }

  it('logs in by phone with an SMS code and shows the citizen their own data', async () => {
    const done = await logIn('+7 (999) 000-00-01');
    expect(done.statusCode).toBe(303);
    expect(done.headers.location).toBe('/profile');
    const profile = await browser.follow(done);
    expect(profile.statusCode).toBe(200);
    expect(profile.body).toContain('Иванов Иван Иванович');
    expect(profile.body).toContain(IVANOV.snils);
    expect(profile.body).toContain(IVANOV.passport.number);
    expect(profile.headers['cache-control']).toBe('no-store');
  });

  it('accepts the e-mail and the SNILS as the login', async () => {
    for (const login of ['IVANOV@example.test', IVANOV.snils]) {
      browser = new Browser(svc.app);
      const res = await passwordStep(login);
      expect(res.headers.location, login).toBe('/login/code');
    }
  });

  it('keeps personal data out of the database in the clear', async () => {
    const rows = await svc.runtime.db.selectFrom('citizens').selectAll().execute();
    const dump = JSON.stringify(rows);
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const secret of [
      IVANOV.snils,
      IVANOV.snils.replace(/\D/g, ''),
      IVANOV.passport.number,
      IVANOV.phone,
      'Иванов',
      IVANOV.inn,
    ]) {
      expect(dump).not.toContain(secret);
    }
  });

  it('refuses a wrong password and an unknown user with the same message', async () => {
    const wrong = await passwordStep(IVANOV.phone, 'not-the-password');
    const unknown = await passwordStep('+79995550000', DEMO_PASSWORD);
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('Неверный логин или пароль.');
    }
  });

  it('locks the account after 5 failures, across sessions, and says for how long', async () => {
    for (let i = 0; i < 5; i++) {
      browser = new Browser(svc.app); // a new session each time: the count is per account
      await passwordStep(IVANOV.phone, `wrong-${i}`);
    }
    browser = new Browser(svc.app);
    const locked = await passwordStep(IVANOV.phone); // even the right password
    expect(locked.statusCode).toBe(429);
    expect(locked.body).toContain('Слишком много неудачных попыток');
    expect(locked.body).toContain('15 минут');

    svc.clock.advance(15 * 60_000 + 1000);
    browser = new Browser(svc.app);
    expect((await passwordStep(IVANOV.phone)).headers.location).toBe('/login/code');
  });

  it('refuses a wrong code, an expired code and a used code', async () => {
    await browser.follow(await passwordStep(IVANOV.phone));
    const real = await codeFromOutbox(svc.app, IVANOV.phone);
    const wrong = await browser.post('/login/code', {
      code: real === '000000' ? '111111' : '000000',
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain('Неверный код.');

    svc.clock.advance(5 * 60_000 + 1);
    const expired = await browser.post('/login/code', {
      code: await codeFromOutbox(svc.app, IVANOV.phone),
    });
    expect(expired.body).toContain('Срок действия кода истёк');

    // A fresh login; its code works once.
    browser = new Browser(svc.app);
    await browser.follow(await passwordStep(IVANOV.phone));
    const code = await codeFromOutbox(svc.app, IVANOV.phone);
    expect((await browser.post('/login/code', { code })).headers.location).toBe('/profile');

    browser = new Browser(svc.app);
    await browser.follow(await passwordStep(IVANOV.phone));
    const reused = await browser.post('/login/code', { code });
    expect(reused.statusCode).toBe(401);
  });

  it('refuses a form without its CSRF token', async () => {
    await browser.get('/login');
    const res = await browser.post(
      '/login',
      { username: IVANOV.phone, password: DEMO_PASSWORD },
      { csrf: false },
    );
    expect(res.statusCode).toBe(403);
    expect(res.body).toContain('Страница устарела');
  });

  it('answers an oversized body with 413 and a malformed form with 400, never a stack', async () => {
    await browser.get('/login');
    const big = await browser.post('/login', { username: 'x'.repeat(70_000), password: 'y' });
    expect(big.statusCode).toBe(413);
    expect(big.body).toContain('Отправлено слишком много данных');
    await browser.get('/login');
    const bad = await browser.post('/login', { username: 'x'.repeat(300), password: 'y' });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toMatch(/at .*\.ts:\d+/);
  });

  it('sends pages behind login back to the login page, and APIs a problem+json 401', async () => {
    const page = await browser.get('/profile');
    expect(page.statusCode).toBe(303);
    expect(page.headers.location).toBe('/login');
    const api = await svc.app.inject({ url: '/profile', headers: { accept: 'application/json' } });
    expect(api.statusCode).toBe(401);
    expect(api.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('enrols an authenticator app, then logs in with it instead of SMS', async () => {
    await browser.follow(await logIn(IVANOV.phone));
    await browser.get('/security');
    const start = await browser.post('/security/totp/start', {});
    const secret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(start.body)![1]!;
    expect(start.body).toContain('data:image/png;base64,');

    const wrong = await browser.post('/security/totp/confirm', { code: '000000', device: 'Pixel' });
    expect(wrong.statusCode).toBe(400);
    const ok = await browser.post('/security/totp/confirm', {
      code: currentTotp(secret, svc.clock.now()),
      device: 'Pixel',
    });
    expect(ok.body).toContain('Приложение-аутентификатор подключено.');

    await browser.post('/logout', {});
    svc.clock.advance(30_000);
    const outboxBefore = svc.runtime.outbox!.list(IVANOV.phone).length;
    await browser.follow(await passwordStep(IVANOV.phone));
    expect(browser.lastPage).toContain('приложения-аутентификатора');
    const code = currentTotp(secret, svc.clock.now());
    expect((await browser.post('/login/code', { code })).headers.location).toBe('/profile');
    expect(svc.runtime.outbox!.list(IVANOV.phone).length).toBe(outboxBefore); // no SMS sent

    // The same TOTP code cannot log in twice (same device: another one re-enrols first).
    await browser.get('/profile');
    await browser.post('/logout', {});
    await browser.follow(await passwordStep(IVANOV.phone));
    expect((await browser.post('/login/code', { code })).body).toContain('уже использован');
  });

  it('keeps the staff rooms for staff', async () => {
    await browser.follow(await logIn(IVANOV.phone));
    const denied = await browser.get('/security-center');
    expect(denied.statusCode).toBe(403);
    expect(denied.body).toContain('только сотрудникам');

    // The security analyst gets in.
    const analyst = PORTAL_PERSONAS.find((p) => p.username === 'security')!.personal.phone;
    browser = new Browser(svc.app);
    await browser.follow(await passwordStep('security'));
    const done = await browser.post('/login/code', {
      code: await codeFromOutbox(svc.app, analyst),
    });
    await browser.follow(done);
    const room = await browser.get('/security-center');
    expect(room.statusCode).toBe(200);
    expect(room.body).toContain('Центр безопасности');
  });

  it('sends a new code on request, not more often than every 30 s; the old one dies', async () => {
    await browser.follow(await passwordStep(IVANOV.phone));
    const first = await codeFromOutbox(svc.app, IVANOV.phone);
    const tooSoon = await browser.post('/login/code/resend', {});
    expect(tooSoon.statusCode).toBe(429);
    expect(tooSoon.body).toContain('Новый код можно запросить через');
    svc.clock.advance(30_000);
    const resent = await browser.post('/login/code/resend', {});
    expect(resent.body).toContain('Новый код отправлен.');
    const second = await codeFromOutbox(svc.app, IVANOV.phone);
    if (second !== first) {
      expect((await browser.post('/login/code', { code: first })).statusCode).toBe(401);
    }
    expect((await browser.post('/login/code', { code: second })).headers.location).toBe('/profile');
  });

  it('removes the authenticator app only with the password, back to SMS codes', async () => {
    await browser.follow(await logIn(IVANOV.phone));
    await browser.get('/security');
    const start = await browser.post('/security/totp/start', {});
    const secret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(start.body)![1]!;
    await browser.post('/security/totp/confirm', { code: currentTotp(secret, svc.clock.now()) });

    const wrong = await browser.post('/security/totp/remove', { password: 'not-it' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('Неверный пароль.');
    expect(wrong.body).toContain('приложения-аутентификатора');
    const removed = await browser.post('/security/totp/remove', { password: DEMO_PASSWORD });
    expect(removed.body).toContain('Коды для входа снова приходят по SMS.');
    expect(removed.body).toContain('Код по SMS на номер');
  });

  it('logs no password, code, SNILS or passport number', async () => {
    await browser.follow(await logIn(IVANOV.phone));
    await browser.get('/profile');
    const log = svc.logs.lines.join('\n');
    expect(log.length).toBeGreaterThan(0);
    const code = svc.runtime.outbox!.list(IVANOV.phone)[0]!.code!;
    for (const secret of [
      DEMO_PASSWORD,
      code,
      IVANOV.snils,
      IVANOV.passport.number,
      IVANOV.phone,
    ]) {
      expect(log).not.toContain(secret);
    }
  });
});
