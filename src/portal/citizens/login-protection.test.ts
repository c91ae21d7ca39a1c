import { afterEach, beforeEach, expect, it } from 'vitest';
import { currentTotp } from '../../platform/otp/totp.js';
import { Browser, codeFromOutbox, testPortal } from '../../../test/support/services.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { DEMO_PASSWORD, PORTAL_PERSONAS } from '../personas.js';

/*
 * Login and code protection (issue 5, item 2; docs/security.md): failures counted per
 * client address across accounts, unknown accounts locked like real ones, TOTP bound to
 * the device it was enrolled on, and one-time codes good for their own operation only.
 */

const IVANOV = PORTAL_PERSONAS[0]!.personal;
const PETROVA = PORTAL_PERSONAS.find((p) => p.personal.phone === '+79990000002')!.personal;
const SPRAYER = '198.51.100.23';

describeEachEngine('login and code protection', (engine) => {
  let svc: Awaited<ReturnType<typeof testPortal>>;

  beforeEach(async () => {
    svc = await testPortal(engine);
  });
  afterEach(async () => {
    await svc.close();
  });

  const at = (ip?: string) => {
    const browser = new Browser(svc.app);
    browser.remoteAddress = ip;
    return browser;
  };

  async function passwordStep(browser: Browser, username: string, password = DEMO_PASSWORD) {
    await browser.get('/login');
    return browser.post('/login', { username, password });
  }

  async function logIn(browser: Browser, username: string, phone: string) {
    await browser.follow(await passwordStep(browser, username));
    const done = await browser.post('/login/code', { code: await codeFromOutbox(svc.app, phone) });
    expect(done.headers.location).toBe('/profile');
    return browser;
  }

  /** The newest message to `to` with this subject: codes of other operations stay apart. */
  const codeWithSubject = (to: string, subject: string) =>
    svc.runtime.outbox!.list(to).find((m) => m.subject === subject && m.code)!.code!;

  it('stops a password spray from one address across accounts, and only that address', async () => {
    const accounts = [
      IVANOV.phone,
      PETROVA.phone,
      'security',
      'admin',
      ...Array.from({ length: 6 }, (_, i) => `+7999555000${i}`), // unknown accounts count too
    ];
    // 30 failures, never more than 3 against any one account: no account lock trips.
    for (let i = 0; i < 30; i++) {
      const res = await passwordStep(at(SPRAYER), accounts[i % accounts.length]!, `Spray-${i}!`);
      expect(res.statusCode, `attempt ${i + 1}`).toBe(401);
    }
    // Now even the right password is refused from there, with the time to wait.
    const refused = await passwordStep(at(SPRAYER), IVANOV.phone);
    expect(refused.statusCode).toBe(429);
    expect(refused.body).toContain('Слишком много неудачных попыток входа с вашего адреса');
    expect(refused.headers['retry-after']).toBe(String(15 * 60));
    // Ivanov himself, from his own address, is not affected.
    expect((await passwordStep(at('192.0.2.10'), IVANOV.phone)).headers.location).toBe(
      '/login/code',
    );
    // The lock ends.
    svc.clock.advance(15 * 60_000 + 1000);
    expect((await passwordStep(at(SPRAYER), IVANOV.phone)).headers.location).toBe('/login/code');
  });

  it('locks an unknown login name after 5 failures, exactly as a real account', async () => {
    for (const username of [IVANOV.phone, '+79995550099']) {
      for (let i = 0; i < 5; i++) await passwordStep(at(`192.0.2.${i + 1}`), username, 'wrong');
      const locked = await passwordStep(at('192.0.2.50'), username, 'whatever');
      expect(locked.statusCode, username).toBe(429);
      expect(locked.body, username).toContain('Слишком много неудачных попыток');
    }
  });

  it('binds TOTP to the enrolling device; another device re-enrols, confirmed by SMS', async () => {
    // Log in on device A: it gets its long-lived, HttpOnly device cookie.
    const deviceA = at();
    await deviceA.follow(await passwordStep(deviceA, IVANOV.phone));
    const loggedIn = await deviceA.post('/login/code', {
      code: await codeFromOutbox(svc.app, IVANOV.phone),
    });
    const cookie = loggedIn.cookies.find((c) => c.name === 'portal_device')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
    expect(cookie.maxAge).toBe(400 * 24 * 60 * 60);
    // Enrol the app there: it is bound to that device.
    await deviceA.get('/security');
    const start = await deviceA.post('/security/totp/start', {});
    const firstSecret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(start.body)![1]!;
    const enrolled = await deviceA.post('/security/totp/confirm', {
      code: currentTotp(firstSecret, svc.clock.now()),
      device: 'Pixel',
    });
    expect(enrolled.body).toContain('Приложение привязано к этому устройству');
    const stored = await svc.runtime.db
      .selectFrom('citizens')
      .select('totp_device_hash')
      .where('totp_device_hash', 'is not', null)
      .execute();
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(cookie.value); // only its hash
    expect(svc.runtime.outbox!.list(IVANOV.email!)[0]!.subject).toBe(
      'Подключено приложение-аутентификатор',
    );

    // Device B: the password leads to the SMS step, not to the TOTP code.
    svc.clock.advance(30_000);
    const deviceB = at();
    const password = await passwordStep(deviceB, IVANOV.phone);
    expect(password.headers.location).toBe('/login/device');
    const devicePage = await deviceB.follow(password);
    expect(devicePage.body).toContain('Приложение-аутентификатор подключено на другом устройстве');
    // The old app's code does not let it skip the step.
    const skipped = await deviceB.post('/login/code', {
      code: currentTotp(firstSecret, svc.clock.now()),
    });
    expect(skipped.headers.location).toBe('/login/device');
    await deviceB.get('/login/device');
    const smsCode = codeWithSubject(IVANOV.phone, 'Вход с нового устройства');
    expect(
      (await deviceB.post('/login/device', { code: smsCode === '000000' ? '111111' : '000000' }))
        .statusCode,
    ).toBe(401);
    const enrolPage = await deviceB.post('/login/device', { code: smsCode });
    expect(enrolPage.statusCode).toBe(200);
    const newSecret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(enrolPage.body)![1]!;
    expect(newSecret).not.toBe(firstSecret);
    expect(enrolPage.body).toContain('data:image/png;base64,');
    expect((await deviceB.post('/login/device/totp', { code: '000000' })).statusCode).toBe(401);
    const done = await deviceB.post('/login/device/totp', {
      code: currentTotp(newSecret, svc.clock.now()),
    });
    expect(done.headers.location).toBe('/profile');
    expect((await deviceB.get('/profile')).statusCode).toBe(200);
    expect(svc.runtime.outbox!.list(IVANOV.email!).map((m) => m.subject)).toContain(
      'Приложение-аутентификатор подключено на новом устройстве',
    );

    // B now logs in with the new app directly; A, the old device, must re-enrol.
    await deviceB.post('/logout', {});
    svc.clock.advance(30_000);
    const direct = await passwordStep(deviceB, IVANOV.phone);
    expect(direct.headers.location).toBe('/login/code');
    await deviceB.follow(direct);
    expect(
      (await deviceB.post('/login/code', { code: currentTotp(newSecret, svc.clock.now()) })).headers
        .location,
    ).toBe('/profile');
    await deviceA.get('/profile');
    await deviceA.post('/logout', {});
    expect((await passwordStep(deviceA, IVANOV.phone)).headers.location).toBe('/login/device');
  });

  it('takes a one-time code only for the operation it was sent for', async () => {
    // Petrova's e-mail is unconfirmed: she asks for an e-mail code in one browser…
    const browser = await logIn(at(), PETROVA.phone, PETROVA.phone);
    await browser.get('/profile');
    await browser.post('/profile/email/send-code', {});
    const emailCode = codeWithSubject(PETROVA.email!, 'Подтверждение электронной почты');
    // …and starts a login in another, which sends a login code.
    const other = at();
    await other.follow(await passwordStep(other, PETROVA.phone));
    const loginCode = codeWithSubject(PETROVA.phone, 'Код для входа');

    // A consent of hers, and its revocation code.
    const petrovaId = (await svc.app.citizens.findIdByIdentifier(PETROVA.phone))!;
    const grant = (clientId: string) =>
      svc.app.consents.grant({
        citizenId: petrovaId,
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
    const first = await grant('bank-one');
    const second = await grant('bank-two');
    await browser.get('/access');
    await browser.post(`/access/${first.id}/revoke`, {});
    const revokeCode = codeWithSubject(PETROVA.phone, 'Код для отключения доступа');

    const distinct = new Set([emailCode, loginCode, revokeCode]);
    if (distinct.size < 3) return; // a one-in-a-million collision: nothing to prove this run

    // The login code does not revoke; the revocation code of one consent does not revoke another.
    expect(
      (await browser.post(`/access/${first.id}/revoke/confirm`, { code: loginCode })).statusCode,
    ).toBe(401);
    await browser.get('/access');
    await browser.post(`/access/${second.id}/revoke`, {});
    expect(
      (await browser.post(`/access/${second.id}/revoke/confirm`, { code: revokeCode })).statusCode,
    ).toBe(401);
    // The e-mail code does not log in; the login code does not confirm the e-mail.
    expect((await other.post('/login/code', { code: emailCode })).statusCode).toBe(401);
    await browser.get('/profile');
    expect((await browser.post('/profile/email/confirm', { code: loginCode })).statusCode).toBe(
      400,
    );
    expect((await svc.app.consents.get(first.id))!.status).toBe('active');
    expect((await svc.app.consents.get(second.id))!.status).toBe('active');

    // Each works for its own operation.
    expect((await other.post('/login/code', { code: loginCode })).headers.location).toBe(
      '/profile',
    );
    await browser.get('/profile');
    expect((await browser.post('/profile/email/confirm', { code: emailCode })).body).toContain(
      'Электронная почта подтверждена.',
    );
    await browser.get('/access');
    await browser.post(`/access/${first.id}/revoke`, {});
    const fresh = codeWithSubject(PETROVA.phone, 'Код для отключения доступа');
    expect(
      (await browser.post(`/access/${first.id}/revoke/confirm`, { code: fresh })).statusCode,
    ).toBe(200);
    expect((await svc.app.consents.get(first.id))!.status).toBe('revoked');
  });
});
