import { chromium, type Browser, type Page } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/platform/http/logger.js';
import { registerDemoBank, startService, type RunningService } from '../../src/services.js';
import { demoPorts } from './demo-process.js';

/** Debian's Chromium, with the flags this machine needs (never a downloaded browser). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** The newest one-time code the service sent to `to`, read from its dev outbox. */
export async function outboxCode(service: RunningService, to: string): Promise<string> {
  const res = await fetch(`${service.url}/dev/outbox?to=${encodeURIComponent(to)}`);
  const messages = (await res.json()) as { code?: string }[];
  return messages.find((m) => m.code)!.code!;
}

/** Fills the login form and the code form, as a person would (the page may be elsewhere). */
export async function logInWithCode(
  page: Page,
  service: RunningService,
  username: string,
  phone: string,
) {
  await page.getByTestId('login-username').fill(username);
  await page.getByTestId('login-password').fill('Demo-Passw0rd!');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('otp-code').waitFor();
  await page.getByTestId('otp-code').fill(await outboxCode(service, phone));
  await page.getByTestId('otp-submit').click();
}

/**
 * Portal and bank in this process on free ports with a fresh data directory (the bank
 * registered with the portal, as the demo does), and Chromium; `close` undoes it all.
 */
export async function demoWithBrowser(name: string) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `soglasie-${name}-`));
  const config = loadConfig({
    SOGLASIE_MODE: 'demo',
    SOGLASIE_DATA_DIR: dataDir,
    ...(await demoPorts()),
  });
  const logger = createLogger({ name, level: process.env.DEBUG_LOG ? 'debug' : 'silent' });
  const portal = await startService('portal', config, { seed: true, logger });
  await registerDemoBank(config, portal);
  const bank = await startService('bank', config, { seed: true, logger });
  const browser = await launchChromium();
  return {
    portal,
    bank,
    browser,
    close: async () => {
      await browser.close();
      await bank.close();
      await portal.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
