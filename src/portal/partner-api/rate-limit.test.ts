import type { FastifyInstance } from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { describeEachEngine, type TestEngine } from '../../../test/support/databases.js';
import { statuses, testPartnerApi } from '../../../test/support/partner-api.js';
import { Browser, codeFromOutbox } from '../../../test/support/services.js';

/*
 * Rate limits and IP blocks on the partner API, over the real mTLS listener: every
 * request below is a TLS 1.3 connection with a partner's client certificate from
 * 127.0.0.1. Windows are long (300 s) so that no test depends on timing.
 */

const PASSWORD = 'Demo-Passw0rd!';
const LIMITS = {
  PARTNER_RATE_LIMIT: '5',
  PARTNER_RATE_WINDOW: '300',
  // Exact counts below: no burst allowance (its own test in rate-limit.test.ts).
  PARTNER_RATE_BURST: '0',
  PARTNER_BLOCK_WINDOW: '300',
  PARTNER_BLOCK_DURATION: '600',
};

async function signIn(app: FastifyInstance, username: string, phone: string) {
  const browser = new Browser(app);
  await browser.get('/login');
  await browser.follow(await browser.post('/login', { username, password: PASSWORD }));
  await browser.post('/login/code', { code: await codeFromOutbox(app, phone) });
  return browser;
}

describeEachEngine('partner API rate limits', (engine: TestEngine) => {
  let portal: Awaited<ReturnType<typeof testPartnerApi>> | undefined;
  afterEach(async () => {
    await portal?.close();
    portal = undefined;
  });

  it('answers 429 problem+json with Retry-After beyond the partner’s limit; others keep theirs', async () => {
    portal = await testPartnerApi(engine, { ...LIMITS, PARTNER_BLOCK_AFTER: '100' });
    const a = await portal.partner('bank-a');
    const b = await portal.partner('bank-b');
    const c = await portal.partner('bank-c', { rateLimit: 8 });

    expect(await statuses(() => a.get('/status'), 5)).toEqual([200, 200, 200, 200, 200]);
    const refused = await a.get('/status');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(300);
    expect(await refused.json()).toMatchObject({
      status: 429,
      code: 'RATE_LIMITED',
      type: 'urn:soglasie:problem:rate-limited',
    });

    // Counted before anything else: no token is looked at, no route needed.
    expect((await a.get('/rs/prns/someone', { authorization: 'Bearer x.y.z' })).status).toBe(429);
    expect((await a.get('/no/such/path')).status).toBe(429);
    expect((await a.get('/token')).status).toBe(429);

    // A's flood spent A's allowance only.
    expect(await statuses(() => b.get('/status'), 6)).toEqual([200, 200, 200, 200, 200, 429]);
    // A partner with its own limit.
    expect(await statuses(() => c.get('/status'), 9)).toEqual([...Array(8).fill(200), 429]);
    expect(await portal.app.ipBlocks.listActive()).toEqual([]);
  });

  it('blocks the source IP after sustained excess (403 IP_BLOCKED), visible and liftable in the security center', async () => {
    portal = await testPartnerApi(engine, { ...LIMITS, PARTNER_BLOCK_AFTER: '3' });
    const { app } = portal;
    const a = await portal.partner('bank-a');
    const b = await portal.partner('bank-b');

    // Five admitted, two refused, the third refusal blocks the address.
    expect(await statuses(() => a.get('/status'), 8)).toEqual([
      200, 200, 200, 200, 200, 429, 429, 403,
    ]);
    const blocked = await b.get('/status');
    expect(blocked.status).toBe(403);
    expect(blocked.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(blocked.headers.get('retry-after'))).toBe(600);
    expect(await blocked.json()).toMatchObject({ status: 403, code: 'IP_BLOCKED' });
    const [entry] = await app.audit.list({ action: 'ip.blocked' });
    expect(entry).toMatchObject({ actor: 'system:rate_limit', details: { client: a.clientId } });

    // Not for citizens.
    const citizen = await signIn(app, '+79990000001', '+79990000001');
    expect((await citizen.get('/security-center/blocks')).statusCode).toBe(403);

    const analyst = await signIn(app, 'security', '+79990000010');
    const page = await analyst.get('/security-center/blocks');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-testid="ip-blocks-list"');
    const row = /<tr data-testid="ip-block-127-0-0-1">([\s\S]*?)<\/tr>/.exec(page.body)?.[1];
    expect(row).toBeDefined();
    expect(row).toContain('127.0.0.1');
    expect(row).toContain('bank-a');
    expect(row).toContain('Постоянное превышение лимита запросов');
    expect(row).toContain('data-testid="ip-block-lift"');
    expect(row).toContain('Снять блокировку');
    const blockId = /action="\/security-center\/blocks\/([^/]+)\/lift"/.exec(row!)![1]!;

    // A forged form (no CSRF token) changes nothing.
    const forged = await analyst.post(
      `/security-center/blocks/${blockId}/lift`,
      {},
      { csrf: false },
    );
    expect(forged.statusCode).toBe(403);
    expect((await b.get('/status')).status).toBe(403);

    await analyst.get('/security-center/blocks');
    const lifted = await analyst.post(`/security-center/blocks/${blockId}/lift`, {});
    expect(lifted.statusCode).toBe(200);
    expect(lifted.body).toContain('Блокировка адреса 127.0.0.1 снята.');
    expect(lifted.body).not.toContain('data-testid="ip-block-127-0-0-1"');
    expect(lifted.body).toContain('Заблокированных адресов нет.');
    const [unblocked] = await app.audit.list({ action: 'ip.unblocked' });
    expect(unblocked).toMatchObject({ subject: `ip-block:${blockId}` });
    expect(unblocked!.actor).toMatch(/^citizen:/);

    // B's requests pass again at once; A is still over its own limit in this window.
    expect((await b.get('/status')).status).toBe(200);
    expect((await a.get('/status')).status).toBe(429);
    // Lifting again: nothing to do.
    const again = await analyst.post(`/security-center/blocks/${blockId}/lift`, {});
    expect(again.body).toContain('Эта блокировка уже снята или истекла.');
  });

  it('lets a partner go over its limit by the burst allowance once per ten windows', async () => {
    portal = await testPartnerApi(engine, {
      ...LIMITS,
      PARTNER_RATE_LIMIT: '10',
      PARTNER_RATE_BURST: '20',
      PARTNER_BLOCK_AFTER: '100',
    });
    const a = await portal.partner('bank-a');
    // Ten, and two more (20 % of ten) from the allowance.
    expect(await statuses(() => a.get('/status'), 14)).toEqual([...Array(12).fill(200), 429, 429]);
  });

  it('ends a block by itself at its time', async () => {
    portal = await testPartnerApi(engine, {
      ...LIMITS,
      PARTNER_RATE_LIMIT: '1',
      PARTNER_BLOCK_AFTER: '1',
      PARTNER_BLOCK_DURATION: '60',
    });
    const a = await portal.partner('bank-a');
    const b = await portal.partner('bank-b');
    expect(await statuses(() => a.get('/status'), 3)).toEqual([200, 403, 403]);
    expect((await b.get('/status')).status).toBe(403);
    portal.clock.advance(59_000);
    expect((await b.get('/status')).status).toBe(403);
    portal.clock.advance(1_000);
    expect((await b.get('/status')).status).toBe(200);
  });
});
