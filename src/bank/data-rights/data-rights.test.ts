import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import { Browser, codeFromOutbox, testBank } from '../../../test/support/services.js';
import { DEMO_PASSWORD } from '../personas.js';

describeEachEngine('bank: the customer’s data rights', (engine) => {
  let svc: Awaited<ReturnType<typeof testBank>>;
  let browser: Browser;

  beforeEach(async () => {
    svc = await testBank(engine);
    browser = new Browser(svc.app);
    await browser.get('/login');
    await browser.follow(
      await browser.post('/login', { username: 'petrova', password: DEMO_PASSWORD }),
    );
    await browser.post('/login/code', { code: await codeFromOutbox(svc.app, '+79990000002') });
  });
  afterEach(async () => {
    await svc.close();
  });

  it('exports what the bank holds as a JSON file, and records the export', async () => {
    const res = await browser.get('/profile/data/export.json');
    expect(res.headers['content-disposition']).toContain('attachment');
    expect(res.json()).toMatchObject({
      customer: { login: 'petrova', lastName: 'Петрова', phone: '+79990000002' },
      gosuslugi: null,
      gosuslugi_history: [],
    });
    const page = await browser.get('/profile/data');
    expect(page.body).toContain('Выгрузка данных: выполнено');
  });

  it('takes a correction request and keeps its text sealed', async () => {
    await browser.get('/profile/data');
    const res = await browser.post('/profile/data/correction', {
      what: 'Фамилия с ошибкой: Петрова-Иванова',
    });
    expect(res.body).toContain('Запрос на исправление принят');
    expect(res.body).toContain('Исправление данных: принято, в работе');
    const dump = JSON.stringify(
      await svc.runtime.db.selectFrom('data_requests').selectAll().execute(),
    );
    expect(dump).not.toContain('Петрова-Иванова');
  });

  it('records a deletion request even with nothing from the portal to delete', async () => {
    await browser.get('/profile/data');
    const res = await browser.post('/profile/data/delete', {});
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('Данные, полученные с Госуслуг, удалены');
    expect(res.body).toContain('Удаление данных: принято, в работе');
  });

  it('refuses an empty correction and a form without its CSRF token', async () => {
    await browser.get('/profile/data');
    expect((await browser.post('/profile/data/correction', { what: '' })).statusCode).toBe(400);
    expect((await browser.post('/profile/data/delete', {}, { csrf: false })).statusCode).toBe(403);
  });
});
