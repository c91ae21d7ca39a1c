import { afterEach, beforeEach, expect, it } from 'vitest';
import { Browser, codeFromOutbox, testBank } from '../../../test/support/services.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { BANK_PERSONAS, DEMO_PASSWORD } from '../personas.js';

describeEachEngine('bank login, profile and operator home', (engine) => {
  let svc: Awaited<ReturnType<typeof testBank>>;
  let browser: Browser;

  beforeEach(async () => {
    svc = await testBank(engine);
    browser = new Browser(svc.app);
  });
  afterEach(async () => {
    await svc.close();
  });

  async function logIn(username: string, phone: string) {
    await browser.get('/login');
    const res = await browser.post('/login', { username, password: DEMO_PASSWORD });
    expect(res.headers.location).toBe('/login/code');
    await browser.follow(res);
    return browser.post('/login/code', { code: await codeFromOutbox(svc.app, phone) });
  }

  it('a customer logs in with password and SMS code and sees «Профиль → Личные данные»', async () => {
    const done = await logIn('ivanov', BANK_PERSONAS[0]!.personal.phone);
    const home = await browser.follow(done);
    expect(home.headers.location).toBe('/profile');
    const profile = await browser.follow(home);
    expect(profile.statusCode).toBe(200);
    expect(profile.body).toContain('Личные данные');
    expect(profile.body).toContain('Иванов Иван Иванович');
    expect((await browser.get('/operator')).statusCode).toBe(403);
  });

  it('the operator lands on the operator home', async () => {
    const done = await logIn('operator', BANK_PERSONAS[2]!.personal.phone);
    const home = await browser.follow(done);
    expect(home.headers.location).toBe('/operator');
    const page = await browser.follow(home);
    expect(page.body).toContain('Рабочее место оператора');
  });

  it('keeps the customer data sealed in the database', async () => {
    const dump = JSON.stringify(await svc.runtime.db.selectFrom('customers').selectAll().execute());
    expect(dump).toContain('ivanov'); // the login name is not secret
    expect(dump).not.toContain('Иванов');
    expect(dump).not.toContain('+79990000001');
  });

  it('logging out ends the session on the server', async () => {
    await browser.follow(await logIn('ivanov', BANK_PERSONAS[0]!.personal.phone));
    const stolen = browser.cookieHeader;
    await browser.get('/profile');
    await browser.post('/logout', {});
    const replay = await svc.app.inject({
      method: 'GET',
      url: '/profile',
      headers: { cookie: stolen, accept: 'text/html' },
    });
    expect(replay.statusCode).toBe(303);
    expect(replay.headers.location).toBe('/login');
  });
});
