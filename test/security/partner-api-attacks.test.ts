import { afterEach, describe, expect, it } from 'vitest';
import { testEngines } from '../support/databases.js';
import { statuses, testPartnerApi } from '../support/partner-api.js';

/**
 * J11's attack battery, continued for the partner API (the mTLS listener): floods above
 * the rate limit and spoofed X-Forwarded-For, one `describe` per attack so the report
 * reads as a checklist. Each expects its refusal and checks that nothing lasting
 * happened. Real TLS 1.3 connections with partners' client certificates from 127.0.0.1;
 * long windows, so that no count depends on timing.
 */

const LIMITS = {
  PARTNER_RATE_LIMIT: '5',
  PARTNER_RATE_WINDOW: '300',
  // Exact counts below: no burst allowance (its own test in rate-limit.test.ts).
  PARTNER_RATE_BURST: '0',
  PARTNER_BLOCK_AFTER: '10',
  PARTNER_BLOCK_WINDOW: '300',
  PARTNER_BLOCK_DURATION: '600',
};

describe.each(testEngines())('attack battery: the partner API [$name]', (engine) => {
  let portal: Awaited<ReturnType<typeof testPartnerApi>> | undefined;
  afterEach(async () => {
    await portal?.close();
    portal = undefined;
  });

  describe('flood above the rate limit', () => {
    it('admits exactly the limit of a concurrent burst, then blocks the address until its time', async () => {
      portal = await testPartnerApi(engine, LIMITS);
      const flooder = await portal.partner('flooder');
      const bystander = await portal.partner('bystander');

      // Fifty at once: the count is atomic, so exactly five get through.
      const burst = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await flooder.get('/status');
          return { status: res.status, body: (await res.json()) as { code?: string } };
        }),
      );
      expect(burst.filter((r) => r.status === 200)).toHaveLength(5);
      expect(burst.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(9);
      expect(burst.every((r) => r.status === 200 || r.status === 429 || r.status === 403)).toBe(
        true,
      );
      // The tenth refusal blocked the address: everyone calling from it is refused.
      expect(burst.some((r) => r.body.code === 'IP_BLOCKED')).toBe(true);
      expect((await bystander.get('/status')).status).toBe(403);
      expect(await portal.app.ipBlocks.listActive()).toHaveLength(1);

      // No lasting effect: when the block ends, the bystander is served again.
      portal.clock.advance(600_000);
      expect((await bystander.get('/status')).status).toBe(200);
      expect(await portal.app.ipBlocks.listActive()).toEqual([]);
    });
  });

  describe('spoofed X-Forwarded-For', () => {
    it('from a hop that is not a trusted proxy, is ignored: it neither unblocks nor frames another address', async () => {
      portal = await testPartnerApi(engine, LIMITS);
      const flooder = await portal.partner('flooder');
      const spoof = { 'x-forwarded-for': '198.51.100.23' };
      expect(await statuses(() => flooder.get('/status', spoof), 15)).toEqual([
        ...Array(5).fill(200),
        ...Array(9).fill(429),
        403,
      ]);
      // The block is on the socket's address, not the one claimed.
      expect((await portal.app.ipBlocks.listActive()).map((b) => b.ip)).toEqual(['127.0.0.1']);
      // Claiming to be elsewhere does not get through it.
      const other = await portal.partner('other');
      for (const claimed of ['203.0.113.77', '203.0.113.77, 10.0.0.1', '::1']) {
        const res = await other.get('/status', { 'x-forwarded-for': claimed });
        expect(res.status).toBe(403);
        expect(((await res.json()) as { code: string }).code).toBe('IP_BLOCKED');
      }
    });

    it('through a trusted proxy, counts the address the proxy saw (rightmost untrusted), not what the client wrote', async () => {
      // The test client plays the proxy: 127.0.0.1 is trusted to forward.
      portal = await testPartnerApi(engine, { ...LIMITS, TRUSTED_PROXIES: '127.0.0.1' });
      const flooder = await portal.partner('flooder');
      // The client writes a fake address first; the proxy appends the real one.
      const forwarded = { 'x-forwarded-for': '192.0.2.200, 203.0.113.5' };
      expect(await statuses(() => flooder.get('/status', forwarded), 15)).toEqual([
        ...Array(5).fill(200),
        ...Array(9).fill(429),
        403,
      ]);
      expect((await portal.app.ipBlocks.listActive()).map((b) => b.ip)).toEqual(['203.0.113.5']);

      // Other clients behind the same proxy are not affected; the blocked one stays blocked
      // whatever it writes in front.
      const neighbour = await portal.partner('neighbour');
      expect((await neighbour.get('/status', { 'x-forwarded-for': '203.0.113.6' })).status).toBe(
        200,
      );
      expect((await neighbour.get('/status')).status).toBe(200);
      expect(
        (await neighbour.get('/status', { 'x-forwarded-for': '203.0.113.6, 203.0.113.5' })).status,
      ).toBe(403);
    });
  });
});
