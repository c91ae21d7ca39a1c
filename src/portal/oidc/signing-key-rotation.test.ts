import * as client from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import {
  addPartner,
  kidOf,
  obtainTokens,
  shiftedClock,
  startLivePortal,
  type LivePortal,
} from '../../../test/support/live-portal.js';
import { openDatabase, type Database } from '../../platform/db/index.js';
import type { PortalDB } from '../db.js';
import { createOidcStore } from './oidc.store.js';
import { rotateSigningKey, SIGNING_KEY_TIMING } from './signing-keys.js';

/*
 * Rotating the token signing key under a running portal, with a real relying party
 * (openid-client) and reads of the data API over mTLS: the next key is in the JWKS
 * before it signs, the portal switches without a restart, and tokens signed by the old
 * key keep working until they expire.
 */
describeEachEngine('signing key rotation on a running portal', (engine) => {
  const clock = shiftedClock();
  let portal: LivePortal;
  let rp: Awaited<ReturnType<typeof addPartner>>;
  /** The "CLI": its own connection on PostgreSQL, as `soglasie keys rotate` would open. */
  let cli: Database<PortalDB> | undefined;

  beforeAll(async () => {
    portal = await startLivePortal(engine, { clock });
    rp = await addPartner(portal);
    if (engine.name === 'postgres') {
      cli = await openDatabase<PortalDB>({ name: 'cli', url: portal.database.url! });
    }
  }, 60_000);
  afterAll(async () => {
    await rp?.close();
    await cli?.close();
    await portal?.close();
  });

  const jwks = async () => {
    const res = await fetch(`${portal.portalUrl}/jwks`);
    expect(res.headers.get('content-type')).toContain('application/jwk-set+json');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    return ((await res.json()) as { keys: { kid: string; d?: string }[] }).keys;
  };
  const read = async (tokens: { access_token: string; claims(): { sub: string } | undefined }) =>
    client.fetchProtectedResource(
      rp.config,
      tokens.access_token,
      new URL(`${portal.mtlsUrl}/rs/prns/${tokens.claims()!.sub}`),
      'GET',
    );
  const cliStore = () => createOidcStore(cli?.db ?? portal.runtime.db);

  it('publishes the next key before use and keeps old tokens valid until they expire', async () => {
    // Before: k1 signs, k2 is already in the JWKS; the relying party caches that JWKS.
    const [k1, k2] = (await jwks()).map((k) => k.kid);
    expect((await jwks()).every((k) => k.d === undefined)).toBe(true);
    const first = await obtainTokens(portal, rp);
    expect(kidOf(first.access_token)).toBe(k1);
    expect(kidOf(first.id_token!)).toBe(k1);
    expect((await read(first)).status).toBe(200);

    // keys rotate --immediately, from another connection while the portal runs.
    const rotation = await rotateSigningKey({
      store: cliStore(),
      sealer: portal.runtime.sealer,
      clock,
      immediately: true,
    });
    expect(rotation).toMatchObject({ promoted: true, retiredKid: k1, currentKid: k2 });
    if (!rotation.promoted) throw new Error('unreachable');

    // Until the portal re-reads its keys (at most refreshMs), it still signs with k1;
    // such a token is as good as any other.
    const during = await obtainTokens(portal, rp);
    expect(kidOf(during.access_token)).toBe(k1);
    expect(portal.app.signingKid()).toBe(k1);

    clock.advance(SIGNING_KEY_TIMING.refreshMs + 1_000);
    expect((await jwks()).map((k) => k.kid)).toEqual([k2, rotation.nextKid, k1]);

    // Now k2 signs. openid-client checks the ID token against the JWKS it fetched before
    // the rotation: k2 was in it already, as the next key.
    const after = await obtainTokens(portal, rp);
    expect(kidOf(after.access_token)).toBe(k2);
    expect(kidOf(after.id_token!)).toBe(k2);
    expect(portal.app.signingKid()).toBe(k2);

    // Every token reads: those signed by the retired key until they expire.
    for (const tokens of [first, during, after]) expect((await read(tokens)).status).toBe(200);
  }, 60_000);

  it('a running portal promotes a requested next key when its lead time is over', async () => {
    const [, k3] = (await jwks()).map((k) => k.kid);
    const asked = await rotateSigningKey({
      store: cliStore(),
      sealer: portal.runtime.sealer,
      clock,
    });
    expect(asked).toMatchObject({ promoted: false, nextKid: k3 });
    if (asked.promoted) throw new Error('unreachable');
    expect(asked.promoteAt!.getTime()).toBeGreaterThan(clock.now().getTime());

    clock.advance(SIGNING_KEY_TIMING.publishLeadMs);
    // The next OIDC request finds it due, promotes it and switches to it.
    expect((await fetch(`${portal.portalUrl}/.well-known/openid-configuration`)).status).toBe(200);
    expect(portal.app.signingKid()).toBe(k3);
    const published = (await jwks()).map((k) => k.kid);
    expect(published[0]).toBe(k3);
    // The first key's window is over by now: it is gone from the JWKS.
    expect(published).toHaveLength(3);
  }, 60_000);
});
