import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoWithBrowser, logInWithCode, outboxCode } from '../support/chromium.js';
import type { RunningService } from '../../src/services.js';

async function logIn(page: Page, service: RunningService, username: string, phone: string) {
  await page.goto(`${service.url}/login`);
  await logInWithCode(page, service, username, phone);
}

describe('a person logs in with a real browser', () => {
  let demo: Awaited<ReturnType<typeof demoWithBrowser>>;
  let portal: RunningService;
  let bank: RunningService;
  let browser: Browser;

  beforeAll(async () => {
    demo = await demoWithBrowser('browser');
    ({ portal, bank, browser } = demo);
  }, 90_000);

  afterAll(async () => {
    await demo?.close();
  });

  it('into the portal with an SMS code from the dev outbox, then out again', async () => {
    const page = await browser.newPage();
    await logIn(page, portal, '+79990000001', '+79990000001');
    await expect.poll(() => page.url()).toBe(`${portal.url}/profile`);
    await expect
      .poll(() => page.getByTestId('personal-data').textContent())
      .toContain('Иванов Иван Иванович');
    expect(await page.title()).toContain('Личные данные');

    await page.getByTestId('logout').click();
    await expect.poll(() => page.url()).toBe(`${portal.url}/login`);
    await page.goto(`${portal.url}/profile`);
    expect(page.url()).toBe(`${portal.url}/login`);
    await page.close();
  });

  it('shows a wrong code as a Russian sentence, not an error page', async () => {
    const page = await browser.newPage();
    await page.goto(`${portal.url}/login`);
    await page.getByTestId('login-username').fill('+79990000002');
    await page.getByTestId('login-password').fill('Demo-Passw0rd!');
    await page.getByTestId('login-submit').click();
    await page.getByTestId('otp-code').waitFor();
    const real = await outboxCode(portal, '+79990000002');
    await page.getByTestId('otp-code').fill(real === '123456' ? '654321' : '123456');
    await page.getByTestId('otp-submit').click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Неверный код.');
    await page.close();
  });

  it('into the bank, to «Профиль → Личные данные»', async () => {
    const page = await browser.newPage();
    await logIn(page, bank, 'ivanov', '+79990000001');
    await expect.poll(() => page.url()).toBe(`${bank.url}/profile`);
    await expect
      .poll(() => page.getByTestId('bank-personal-data').textContent())
      .toContain('Иванов Иван Иванович');
    await page.close();
  });
});
