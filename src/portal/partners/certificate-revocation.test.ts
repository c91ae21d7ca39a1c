import { sql } from 'kysely';
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import {
  addPartner,
  obtainTokens,
  startLivePortal,
  type LivePortal,
} from '../../../test/support/live-portal.js';
import { pushedAuthorization } from '../../../test/support/partner-client.js';
import { revokePartnerCertificate } from '../../commands/partner-revoke-cert.js';
import { manualClock } from '../../platform/clock.js';
import { createCertificateRevocations, REVOCATION_CACHE_MS } from './certificate-revocation.js';
import { createRevocationStore } from './certificate-revocation.store.js';

/*
 * `soglasie partner revoke-cert` on a running portal: from the next request on, the
 * partner's certificate is refused on every route of the mTLS listener (problem+json
 * 403 CERT_REVOKED), the OAuth endpoints answer OAuth errors, the revocation is audited,
 * and other partners are not affected.
 */
describeEachEngine('partner certificate revocation', (engine) => {
  let portal: LivePortal;
  let bank: Awaited<ReturnType<typeof addPartner>>;
  let other: Awaited<ReturnType<typeof addPartner>>;

  beforeAll(async () => {
    portal = await startLivePortal(engine);
    bank = await addPartner(portal, 'Банк');
    other = await addPartner(portal, 'Другой банк');
  }, 60_000);
  afterAll(async () => {
    await bank?.close();
    await other?.close();
    await portal?.close();
  });

  const revoke = (clientId: string, adminToken = portal.adminToken) =>
    revokePartnerCertificate({
      portalAdminUrl: `http://127.0.0.1:${portal.config.portal.httpPort}`,
      adminToken,
      clientId,
      reason: 'ключ скомпрометирован',
    });

  it('refuses a revoked certificate at once, everywhere on the listener', async () => {
    const tokens = await obtainTokens(portal, bank);
    const sub = tokens.claims()!.sub;
    const readPerson = () =>
      client.fetchProtectedResource(
        bank.config,
        tokens.access_token,
        new URL(`${portal.mtlsUrl}/rs/prns/${sub}`),
        'GET',
      );
    // Before: the keep-alive connection of the bank's agent works.
    expect((await bank.request(`${portal.mtlsUrl}/status`)).status).toBe(200);
    expect((await readPerson()).status).toBe(200);

    const revoked = await revoke(bank.info.client_id);
    expect(revoked).toMatchObject({ client_id: bank.info.client_id, already_revoked: false });
    expect(revoked.certificate_thumbprint).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The same connection, the next request: refused, with a stable problem code.
    for (const path of ['/status', `/rs/prns/${sub}`, '/openapi.json', '/no-such-route']) {
      const res = await bank.request(`${portal.mtlsUrl}${path}`, { accept: 'application/json' });
      expect(res.status, path).toBe(403);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 403, code: 'CERT_REVOKED' });
    }
    expect((await readPerson()).status).toBe(403);

    // The OAuth endpoints answer OAuth errors.
    const token = await bank.post(`${portal.mtlsUrl}/token`, {});
    expect(token.status).toBe(401);
    expect(await token.json()).toEqual({
      error: 'invalid_client',
      error_description: 'The client certificate has been revoked.',
    });
    await expect(pushedAuthorization(bank)).rejects.toMatchObject({
      error: 'invalid_client',
      error_description: 'The client certificate has been revoked.',
    });
    const me = await bank.request(`${portal.mtlsUrl}/me`, {
      authorization: `Bearer ${tokens.access_token}`,
    });
    expect(me.status).toBe(401);
    expect(me.headers.get('www-authenticate')).toContain('error="invalid_token"');

    // Another partner is not affected.
    expect((await other.request(`${portal.mtlsUrl}/status`)).status).toBe(200);

    // Audited once: the thumbprint and serial, not the operator's free text.
    const { rows } = await sql<{ actor: string; subject: string; details: object }>`
      select actor, subject, details from audit_log
      where action = 'partner.certificate_revoked'`.execute(portal.runtime.db);
    expect(rows).toEqual([
      {
        actor: 'admin-api',
        subject: bank.info.client_id,
        details: {
          thumbprint: revoked.certificate_thumbprint,
          serial: revoked.certificate_serial,
        },
      },
    ]);

    // Revoking again changes nothing.
    expect(await revoke(bank.info.client_id)).toMatchObject({
      already_revoked: true,
      revoked_at: revoked.revoked_at,
    });
    const again = await sql<{ n: number }>`
      select count(*)::int as n from audit_log
      where action = 'partner.certificate_revoked'`.execute(portal.runtime.db);
    expect(again.rows[0]!.n).toBe(1);
  }, 60_000);

  it('the admin API needs its token, and knows its partners', async () => {
    await expect(revoke(other.info.client_id, 'x'.repeat(43))).rejects.toThrow(/401/);
    await expect(revoke('partner-nobody')).rejects.toThrow(/404/);
    expect((await other.request(`${portal.mtlsUrl}/status`)).status).toBe(200);
  });

  it('a new TLS connection with the revoked certificate is refused too', async () => {
    const fresh = new Agent({
      connect: {
        ca: readFileSync(join(bank.dir, 'ca.pem')),
        cert: readFileSync(join(bank.dir, 'client-cert.pem')),
        key: readFileSync(join(bank.dir, 'client-key.pem')),
      },
    });
    try {
      const res = await undiciFetch(`${portal.mtlsUrl}/status`, { dispatcher: fresh });
      expect(res.status).toBe(403);
    } finally {
      await fresh.close();
    }
  });

  it('other instances refuse it within the cache time', async () => {
    const clock = manualClock();
    const store = createRevocationStore(portal.runtime.db as never);
    const partners = { byClientId: portal.app.partners!.byClientId };
    const thisInstance = createCertificateRevocations({
      partners,
      store,
      clock,
      audit: async () => {},
    });
    const otherInstance = createCertificateRevocations({
      partners,
      store,
      clock,
      audit: async () => {},
    });
    const partner = (await portal.app.partners!.byClientId(other.info.client_id))!;
    expect(await otherInstance.revokedClient(partner.cert_thumbprint)).toBeUndefined();
    await thisInstance.revoke({ clientId: other.info.client_id, actor: 'test' });
    // At once where it was revoked; elsewhere when the cached list expires.
    expect(await thisInstance.revokedClient(partner.cert_thumbprint)).toBe(partner.client_id);
    clock.advance(REVOCATION_CACHE_MS - 1);
    expect(await otherInstance.revokedClient(partner.cert_thumbprint)).toBeUndefined();
    clock.advance(1);
    expect(await otherInstance.revokedClient(partner.cert_thumbprint)).toBe(partner.client_id);
  });
});
