import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningService } from '../../src/services.js';
import { demoWithBrowser, logInWithCode } from '../support/chromium.js';

/**
 * J11 in a real browser: the security analyst keeps the security center open; a citizen
 * logs in from a new device; the alert and the audit entries appear on the open page by
 * themselves (Server-Sent Events through the page's own script, no reload).
 */
describe('the security center shows alerts and the audit log live (J11)', () => {
  let demo: Awaited<ReturnType<typeof demoWithBrowser>>;
  let portal: RunningService;
  let browser: Browser;

  beforeAll(async () => {
    demo = await demoWithBrowser('security-center');
    ({ portal, browser } = demo);
  }, 90_000);

  afterAll(async () => {
    await demo?.close();
  });

  async function citizenLogsIn() {
    // Each context is a new browser profile: a new device for the portal.
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${portal.url}/login`);
    await logInWithCode(page, portal, '+79990000001', '+79990000001');
    await page.waitForURL(`${portal.url}/profile`);
    await context.close();
  }

  it('a login from a new device appears as an alert and in the audit stream without a reload', async () => {
    await citizenLogsIn(); // the account's first login: nothing to compare with yet

    const analyst = await browser.newContext();
    const page = await analyst.newPage();
    await page.goto(`${portal.url}/login`);
    await logInWithCode(page, portal, 'security', '+79990000010');
    await page.waitForURL(/\/profile|\/security-center/);
    await page.goto(`${portal.url}/security-center`);
    await page.getByTestId('security-alerts').waitFor();
    const alerts = page.locator('[data-testid="security-alert"][data-alert-code]');
    const before = await alerts.count();

    await citizenLogsIn(); // a second device: the new-device rule fires

    await expect
      .poll(() => alerts.count(), { timeout: 15_000, interval: 250 })
      .toBeGreaterThan(before);
    expect(await alerts.first().textContent()).toMatch(/устройств/i);
    await expect
      .poll(() => page.getByTestId('audit-stream').textContent(), {
        timeout: 15_000,
        interval: 250,
      })
      .toContain('login');
    // A citizen without the role is not let in.
    const citizen = await browser.newContext();
    const other = await citizen.newPage();
    await other.goto(`${portal.url}/login`);
    await logInWithCode(other, portal, '+79990000001', '+79990000001');
    await other.waitForURL(`${portal.url}/profile`);
    const denied = await other.goto(`${portal.url}/security-center`);
    expect(denied?.status()).toBe(403);
    await citizen.close();
    await analyst.close();
  });
});
