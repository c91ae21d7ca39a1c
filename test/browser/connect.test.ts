import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/services.js';
import { demoWithBrowser, logInWithCode, outboxCode } from '../support/chromium.js';

/**
 * J1 then J5 in a real browser: a person connects the bank from the portal by their bank
 * client number, and later revokes it; the bank's open page follows both on its own.
 */
describe('a citizen connects the bank from the portal (J1) and later revokes it (J5)', () => {
  let demo: Awaited<ReturnType<typeof demoWithBrowser>>;
  let portal: RunningService;
  let bank: RunningService;
  let browser: Browser;

  beforeAll(async () => {
    demo = await demoWithBrowser('connect');
    ({ portal, bank, browser } = demo);
  }, 90_000);

  afterAll(async () => {
    await demo?.close();
  });

  const linkStatus = (tab: Page) =>
    tab
      .getByTestId('portal-link-status')
      .textContent({ timeout: 1_000 })
      .catch(() => '');

  it('«Подключить сервисы» → client number → consent screen → code: «Активно» here, «Доступ предоставлен» at the bank', async () => {
    const context = await browser.newContext();
    // The bank: the customer reads their client number and leaves «Безопасность» open.
    const bankTab = await context.newPage();
    await bankTab.goto(`${bank.url}/login`);
    await logInWithCode(bankTab, bank, 'ivanov', '+79990000001');
    await bankTab.waitForURL(`${bank.url}/profile`);
    const clientNumber = (await bankTab.getByTestId('bank-client-number').textContent())!.trim();
    await bankTab.goto(`${bank.url}/security`);
    expect(await linkStatus(bankTab)).toContain('не связан');

    // The portal, in another tab.
    const page = await context.newPage();
    await page.goto(`${portal.url}/login`);
    await logInWithCode(page, portal, '+79990000001', '+79990000001');
    await page.goto(`${portal.url}/access`);
    await page.getByTestId('connect-services').click();
    const offer = page.locator('[data-testid^="connectable-"]', { hasText: 'Банк' });
    await offer.locator('[data-testid^="connect-partner-"]').click();

    // A wrong number first: the form says so in Russian and keeps the citizen on it.
    await page.getByTestId('connect-client-ref').fill('№#!');
    await page.getByTestId('connect-continue').click();
    expect(await page.locator('.alert').textContent()).toContain('Номер клиента банка');

    await page.getByTestId('connect-client-ref').fill(clientNumber);
    await page.getByTestId('connect-continue').click();
    // The same consent screen as J2: who, why, the number typed, the real values.
    await page.getByTestId('consent-approve').waitFor();
    expect(await page.getByTestId('consent-partner').textContent()).toBe('Банк');
    expect(await page.getByTestId('consent-client-ref').textContent()).toBe(clientNumber);
    expect(await page.getByTestId('consent-preview-fullname').textContent()).toContain(
      'Иванов Иван Иванович',
    );
    expect(await page.getByTestId('consent-scope-fullname').isDisabled()).toBe(true);
    await page.getByTestId('consent-approve').click();
    await page.getByTestId('otp-code').fill(await outboxCode(portal, '+79990000001'));
    await page.getByTestId('otp-submit').click();
    await page.waitForURL(`${portal.url}/access?requested=1`);

    // The bank is told, matches its customer and takes its token: «Активно» after a reload.
    const row = page.locator('[data-testid^="connection-partner-"]', { hasText: 'Банк' });
    await expect
      .poll(
        async () => {
          await page.reload();
          return row.getByTestId('connection-status').textContent();
        },
        { timeout: 15_000, interval: 500 },
      )
      .toBe('Активно');
    // …and the bank's open page changes by itself within seconds.
    await expect
      .poll(() => linkStatus(bankTab), { timeout: 10_000, interval: 250 })
      .toContain('Доступ предоставлен');

    // J5: «Отключить» with a code; the bank's page follows again, on its own.
    await row.getByTestId('connection-revoke').click();
    await page.getByTestId('otp-code').fill(await outboxCode(portal, '+79990000001'));
    await page.getByTestId('otp-submit').click();
    expect(await row.getByTestId('connection-status').textContent()).toBe('Отключено');
    await expect
      .poll(() => linkStatus(bankTab), { timeout: 10_000, interval: 250 })
      .toContain('не связан');
    await context.close();
  });
});
