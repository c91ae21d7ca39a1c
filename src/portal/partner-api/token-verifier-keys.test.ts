import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../platform/clock.js';
import { AccessRefused, createTokenVerifier } from './access-checks.js';

/*
 * The data API's verifier follows the portal's published signing keys (docs/keys.md):
 * tokens of every published key pass; a kid it has not seen makes it re-read the keys
 * once; a key no longer published is refused.
 */
describe('createTokenVerifier with the live signing keys', () => {
  const clock = manualClock('2026-12-01T09:00:00Z');
  const now = () => Math.floor(clock.now().getTime() / 1000);
  const keys: { kid: string; privateKey: CryptoKey; publicJwk: JWK }[] = [];

  beforeAll(async () => {
    for (const kid of ['k1', 'k2', 'k3']) {
      const pair = await generateKeyPair('ES256', { extractable: true });
      const publicJwk = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' };
      keys.push({ kid, privateKey: pair.privateKey, publicJwk });
    }
  });

  const token = (i: number) =>
    new SignJWT({
      client_id: 'partner-bank',
      scope: 'openid fullname',
      consent_id: 'consent-1',
      jti: `jti-${i}-${Math.random()}`,
    })
      .setProtectedHeader({ alg: 'ES256', kid: keys[i]!.kid, typ: 'at+jwt' })
      .setIssuer('https://portal.test')
      .setAudience('https://partners.portal.test/rs')
      .setSubject('sub-1')
      .setIssuedAt(now())
      .setExpirationTime(now() + 600)
      .sign(keys[i]!.privateKey);

  function source(initial: number[]) {
    const state = { published: initial, reloads: 0, cached: initial };
    return {
      state,
      jwks: {
        current: async () => state.cached.map((i) => keys[i]!.publicJwk),
        reload: async () => {
          state.reloads++;
          state.cached = state.published;
          return state.cached.map((i) => keys[i]!.publicJwk);
        },
      },
    };
  }
  const verifier = (jwks: ReturnType<typeof source>['jwks']) =>
    createTokenVerifier({
      jwks,
      issuer: 'https://portal.test',
      audience: 'https://partners.portal.test/rs',
      clock,
      cacheSize: 0,
    });

  it('accepts tokens of every published key without re-reading', async () => {
    const s = source([1, 2, 0]); // current k2, next k3, retired k1
    const verify = verifier(s.jwks);
    for (const i of [0, 1, 2]) expect((await verify(await token(i))).sub).toBe('sub-1');
    expect(s.state.reloads).toBe(0);
  });

  it('re-reads the keys once for a kid it has not seen, then accepts', async () => {
    const s = source([0, 1]);
    const verify = verifier(s.jwks);
    s.state.published = [1, 2, 0]; // a rotation published k3 since the last read
    expect((await verify(await token(2))).sub).toBe('sub-1');
    expect(s.state.reloads).toBe(1);
    expect((await verify(await token(2))).sub).toBe('sub-1');
    expect(s.state.reloads).toBe(1);
  });

  it('refuses a token of a key no longer published', async () => {
    const s = source([1, 2]); // k1's window is over
    const verify = verifier(s.jwks);
    const err = await verify(await token(0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AccessRefused);
    expect(err).toMatchObject({ code: 'TOKEN_INVALID', status: 401 });
    expect(s.state.reloads).toBe(1);
  });
});
