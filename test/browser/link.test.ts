import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoWithBrowser, logInWithCode, outboxCode } from '../support/chromium.js';
import type { RunningService } from '../../src/services.js';

const PASSWORD = 'Demo-Passw0rd!';

/** J2 and J3 in a real browser: link the bank to the portal, then a test request. */
describe('a bank customer links their portal account (J2) and runs a test request (J3)', () => {
  let demo: Awaited<ReturnType<typeof demoWithBrowser>>;
  let portal: RunningService;
  let bank: RunningService;
  let browser: Browser;

  beforeAll(async () => {
    demo = await demoWithBrowser('link');
    ({ portal, bank, browser } = demo);
  }, 90_000);

  afterAll(async () => {
    await demo?.close();
  });

  async function bankLogin(page: Page) {
    await page.goto(`${bank.url}/login`);
    await logInWithCode(page, bank, 'ivanov', '+79990000001');
    await page.waitForURL(`${bank.url}/profile`);
  }

  it('links, sees «Доступ предоставлен» and the portal data, and gets an application status', async () => {
    const page = await browser.newPage();
    await bankLogin(page);
    await page.goto(`${bank.url}/security`);
    expect(await page.getByTestId('portal-link-status').textContent()).toContain('не связан');

    await page.getByTestId('link-portal').click();
    await page.getByTestId('reconfirm-password').fill(PASSWORD);
    await page.getByTestId('reconfirm-submit').click();

    // At the portal: its own login with its own SMS code.
    await page.waitForURL(/\/login\?next=/);
    expect(page.url().startsWith(portal.url)).toBe(true);
    await logInWithCode(page, portal, '+79990000001', '+79990000001');

    // The consent screen: who, why, the real (masked) values; optional data can be unticked.
    await page.getByTestId('consent-approve').waitFor();
    expect(await page.getByTestId('consent-partner').textContent()).toBe('Банк');
    expect(await page.getByTestId('consent-scope-fullname').isDisabled()).toBe(true);
    expect(await page.getByTestId('consent-preview-fullname').textContent()).toContain(
      'Иванов Иван Иванович',
    );
    await page.getByTestId('consent-scope-gender').uncheck();
    await page.getByTestId('consent-approve').click();
    await page.getByTestId('otp-code').fill(await outboxCode(portal, '+79990000001'));
    await page.getByTestId('otp-submit').click();

    // Back at the bank.
    await page.waitForURL(`${bank.url}/security?linked=1`);
    const status = await page.getByTestId('portal-link-status').textContent();
    expect(status).toContain('Доступ предоставлен');
    expect(status).toContain('СНИЛС');
    expect(status).not.toContain('пол');

    await page.goto(`${bank.url}/profile`);
    expect(await page.getByTestId('portal-data').textContent()).toContain('Иванов Иван Иванович');

    // The portal's «Управление доступом» shows the bank as connected.
    await page.goto(`${portal.url}/access`);
    const row = page.locator('[data-testid^="connection-partner-"]');
    expect(await row.count()).toBe(1);
    expect(await row.getByTestId('connection-status').textContent()).toBe('Активно');
    expect(await row.getByTestId('connection-scopes').textContent()).toContain('СНИЛС');

    await page.goto(`${bank.url}/gosuslugi`);
    await page.getByTestId('portal-test-request').click();
    await page.getByTestId('portal-test-result').waitFor();
    expect(await page.getByTestId('portal-test-result').textContent()).toMatch(
      /Заявление № \S+ «.+»: /,
    );

    // J12: the citizen sees who read what, and can take it away as JSON — without values.
    await page.goto(`${portal.url}/access`);
    await page.getByTestId('access-log-link').click();
    const entries = page.getByTestId('access-log-entry');
    expect(await entries.count()).toBeGreaterThanOrEqual(5); // person, docs, addrs, ctts, orders
    const log = await page.getByTestId('access-log').textContent();
    expect(log).toContain('Банк');
    expect(log).toContain('Паспорт');
    expect(log).toContain('Заявления на госуслуги');
    const exported = await page.evaluate(async () => (await fetch('/access/log.json')).text());
    const json = JSON.parse(exported) as { entries: { category: string; fields: string[] }[] };
    expect(json.entries.some((e) => e.category === 'Паспорт' && e.fields.length > 0)).toBe(true);
    await page.goto(`${portal.url}/profile`);
    const snils = (await page.getByTestId('personal-snils').textContent())!;
    expect(exported).not.toContain(snils);
    await page.close();
  });

  /** J2 the short way, for the tests below that start from a linked customer. */
  async function link(page: Page) {
    await page.goto(`${bank.url}/security/portal/link`);
    await page.getByTestId('reconfirm-password').fill(PASSWORD);
    await page.getByTestId('reconfirm-submit').click();
    await page.waitForURL((url) => url.href.startsWith(portal.url));
    if (page.url().includes('/login'))
      await logInWithCode(page, portal, '+79990000001', '+79990000001');
    await page.getByTestId('consent-approve').click();
    await page.getByTestId('otp-code').fill(await outboxCode(portal, '+79990000001'));
    await page.getByTestId('otp-submit').click();
    await page.waitForURL(`${bank.url}/security?linked=1`);
  }

  /** The revocation timeline of the newest consent with the bank, as the citizen sees it. */
  const portalHistory = async (page: Page) => {
    await page.goto(`${portal.url}/access`);
    return page
      .locator('[data-testid^="connection-partner-"]')
      .first()
      .getByTestId('connection-history')
      .textContent();
  };

  const portalRowStatus = async (page: Page) => {
    await page.goto(`${portal.url}/access`);
    const rows = page.locator('[data-testid^="connection-partner-"]');
    return rows.first().getByTestId('connection-status').textContent();
  };

  it('J6: unlinking at the bank ends the consent at the portal and deletes the data', async () => {
    const page = await browser.newPage();
    await bankLogin(page);
    await link(page);
    await page.getByTestId('unlink-portal').click();
    expect(await page.getByRole('status').textContent()).toContain('данные удалены');
    expect(await page.getByTestId('portal-link-status').textContent()).toContain('не связан');
    expect(await portalRowStatus(page)).toBe('Отключено');
    await page.goto(`${bank.url}/profile`);
    expect(await page.getByTestId('portal-data').count()).toBe(0);
    await expect
      .poll(() => portalHistory(page), { timeout: 15_000, interval: 500 })
      .toMatch(/Доступ отключён[\s\S]*Сервис подтвердил удаление данных/);
    await page.close();
  });

  it('J5: «Отключить» at the portal with a code; the bank is told and deletes the data by itself', async () => {
    // One context, two tabs: the bank's page stays open while the portal is used.
    const context = await browser.newContext();
    const page = await context.newPage();
    await bankLogin(page);
    await link(page);
    // The bank's «Безопасность» stays open in another tab of the same session.
    const bankTab = await context.newPage();
    await bankTab.goto(`${bank.url}/security`);
    expect(await bankTab.getByTestId('portal-link-status').textContent()).toContain(
      'Доступ предоставлен',
    );
    await page.goto(`${portal.url}/access`);
    const row = page.locator('[data-testid^="connection-partner-"]').first();
    expect(await row.getByTestId('connection-status').textContent()).toBe('Активно');
    await row.getByTestId('connection-revoke').click();
    await page.getByTestId('otp-code').fill(await outboxCode(portal, '+79990000001'));
    await page.getByTestId('otp-submit').click();
    expect(await portalRowStatus(page)).toBe('Отключено');
    // The citizen is told too (by e-mail: Иванов's is confirmed).
    const mail = (await (
      await fetch(`${portal.url}/dev/outbox?to=ivanov@example.test`)
    ).json()) as { subject: string; channel: string }[];
    expect(mail.map((m) => m.subject)).toContain('Доступ к данным отключён');
    expect(mail.map((m) => m.subject)).toContain('Вы предоставили доступ к данным');
    expect(mail.every((m) => m.channel === 'email')).toBe(true);

    // The portal tells the bank (a signed webhook); the bank deletes what it had, on its own,
    // and its open page changes by itself within seconds (nobody reloads it here).
    await expect
      .poll(
        () =>
          bankTab
            .getByTestId('portal-link-status')
            .textContent({ timeout: 1_000 })
            .catch(() => ''),
        { timeout: 10_000, interval: 250 },
      )
      .toContain('не связан');
    expect(await bankTab.getByTestId('portal-link-notice').textContent()).toContain(
      'согласие отозвано на Госуслугах',
    );
    expect(await bankTab.getByTestId('portal-link-history').textContent()).toContain(
      'Доступ отозван на Госуслугах',
    );
    // …and tells the customer, without personal data.
    const sms = (await (
      await fetch(`${bank.url}/dev/outbox?to=${encodeURIComponent('+79990000001')}`)
    ).json()) as { subject: string; text: string }[];
    expect(sms.find((m) => m.subject === 'Доступ к Госуслугам отключён')?.text).toBe(
      'Банк: доступ к данным Госуслуг отключён. Банк удалил полученные с портала данные.',
    );
    await bankTab.close();
    await expect
      .poll(
        async () => {
          await page.goto(`${bank.url}/security`);
          return page.getByTestId('portal-link-status').textContent();
        },
        { timeout: 15_000, interval: 500 },
      )
      .toContain('не связан');
    await page.goto(`${bank.url}/gosuslugi`);
    await page.getByTestId('portal-test-request').click();
    await page.getByTestId('portal-test-result').waitFor();
    expect(await page.getByTestId('portal-test-result').textContent()).toContain('не предоставлен');
    // The bank proved the deletion with a signed receipt: the citizen sees it on the timeline.
    await expect
      .poll(() => portalHistory(page), { timeout: 15_000, interval: 500 })
      .toMatch(
        /Доступ отключён[\s\S]*Сервис получил уведомление об отключении[\s\S]*Сервис подтвердил удаление данных/,
      );
    await context.close();
  });

  it('J12 at the bank: the export holds the portal data; «Удалить» removes it and ends the consent', async () => {
    const page = await browser.newPage();
    await bankLogin(page);
    await link(page);
    await page.goto(`${bank.url}/profile/data`);
    const exported = JSON.parse(
      await page.evaluate(async () => (await fetch('/profile/data/export.json')).text()),
    ) as { gosuslugi: { data: { person: { lastName: string } } } | null };
    expect(exported.gosuslugi?.data.person.lastName).toBe('Иванов');
    await page.getByTestId('data-delete').click();
    expect(await page.getByRole('status').textContent()).toContain('удалены');
    expect(await portalRowStatus(page)).toBe('Отключено');
    await page.goto(`${bank.url}/profile/data`);
    const after = JSON.parse(
      await page.evaluate(async () => (await fetch('/profile/data/export.json')).text()),
    ) as { gosuslugi: unknown };
    expect(after.gosuslugi).toBeNull();
    await page.close();
  });

  it('a refusal at the portal lands on a clear page at the bank', async () => {
    const page = await browser.newPage();
    await bankLogin(page);
    await page.goto(`${bank.url}/security/portal/link`);
    await page.getByTestId('reconfirm-password').fill(PASSWORD);
    await page.getByTestId('reconfirm-submit').click();
    await page.waitForURL(/\/login\?next=/);
    await logInWithCode(page, portal, '+79990000001', '+79990000001');
    await page.getByTestId('consent-deny').click();
    await page.waitForURL(new RegExp(`^${bank.url}/portal/callback`));
    expect(await page.getByRole('alert').textContent()).toContain('Вы отказали в доступе');
    await page.close();
  });

  it('a wrong bank password does not leave the bank', async () => {
    const page = await browser.newPage();
    await bankLogin(page);
    await page.goto(`${bank.url}/security/portal/link`);
    await page.getByTestId('reconfirm-password').fill('wrong-password');
    await page.getByTestId('reconfirm-submit').click();
    expect(await page.getByRole('alert').textContent()).toContain('Неверный пароль');
    expect(page.url().startsWith(bank.url)).toBe(true);
    await page.close();
  });
});
