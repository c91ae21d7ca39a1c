import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../platform/clock.js';
import type { Consent } from '../consents/consent.js';
import {
  AccessRefused,
  checkCertificateBinding,
  checkConsentActive,
  checkPartner,
  checkSubject,
  createTokenVerifier,
  grantedScopes,
  readAccessToken,
  type AccessTokenClaims,
} from './access-checks.js';

const ISSUER = 'https://portal.test';
const AUDIENCE = 'https://portal.test/rs';
const THUMBPRINT = 'x5t-of-the-partner-certificate';

function refusedBy(fn: () => unknown): AccessRefused {
  try {
    fn();
  } catch (err) {
    if (err instanceof AccessRefused) return err;
    throw err;
  }
  throw new Error('expected an AccessRefused');
}

async function refusedAsync(promise: Promise<unknown>): Promise<AccessRefused> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AccessRefused) return err;
    throw err;
  }
  throw new Error('expected an AccessRefused');
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('readAccessToken', () => {
  it('returns the scheme and token of a Bearer or DPoP Authorization header', () => {
    expect(readAccessToken('Bearer eyJhbGciOi.eyJzdWIi.c2ln-_')).toEqual({
      scheme: 'Bearer',
      token: 'eyJhbGciOi.eyJzdWIi.c2ln-_',
    });
    expect(readAccessToken('DPoP eyJhbGciOi.eyJzdWIi.c2ln')).toEqual({
      scheme: 'DPoP',
      token: 'eyJhbGciOi.eyJzdWIi.c2ln',
    });
  });

  it.each([
    ['no header', undefined],
    ['an empty header', ''],
    ['Basic credentials', 'Basic cGFydG5lcjpzZWNyZXQ='],
    ['Bearer without a token', 'Bearer '],
    ['a token with spaces', 'Bearer abc def'],
    ['a token with characters outside RFC 6750', 'Bearer abc"def'],
  ])('refuses %s with 401 TOKEN_MISSING', (_what, header) => {
    const err = refusedBy(() => readAccessToken(header));
    expect(err.code).toBe('TOKEN_MISSING');
    expect(err.status).toBe(401);
    expect(err.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
  });
});

describe('createTokenVerifier', () => {
  const clock = manualClock('2026-12-01T09:00:00Z');
  const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  let otherPrivateKey: CryptoKey;
  let publicSpki: string;
  let verify: (token: string) => Promise<AccessTokenClaims>;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'portal-1', alg: 'ES256', use: 'sig' };
    publicSpki = await exportSPKI(pair.publicKey);
    otherPrivateKey = (await generateKeyPair('ES256')).privateKey;
    verify = createTokenVerifier({
      jwks: { keys: [publicJwk] },
      issuer: ISSUER,
      audience: AUDIENCE,
      clock,
    });
  });

  const claims = (overrides: Record<string, unknown> = {}) => ({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'pairwise-sub-1',
    client_id: 'partner-bank',
    scope: 'openid fullname contacts',
    consent_id: 'consent-1',
    jti: 'jti-1',
    iat: nowSeconds(),
    exp: nowSeconds() + 600,
    cnf: { 'x5t#S256': THUMBPRINT },
    ...overrides,
  });

  function sign(
    payload: Record<string, unknown> = claims(),
    opts: { key?: CryptoKey | Uint8Array; header?: Record<string, unknown> } = {},
  ): Promise<string> {
    const header = { alg: 'ES256', typ: 'at+jwt', kid: 'portal-1', ...opts.header };
    return new SignJWT(payload)
      .setProtectedHeader(header as { alg: string })
      .sign(opts.key ?? privateKey);
  }

  it('accepts a token signed by the portal for the data API and returns its claims', async () => {
    const result = await verify(await sign());
    expect(result).toMatchObject({
      sub: 'pairwise-sub-1',
      client_id: 'partner-bank',
      consent_id: 'consent-1',
      scope: 'openid fullname contacts',
      cnf: { 'x5t#S256': THUMBPRINT },
    });
  });

  it.each([
    ['another issuer', { iss: 'https://evil.test' }],
    ['another audience', { aud: 'https://bank.test' }],
    ['no consent_id', { consent_id: undefined }],
    ['no scope', { scope: undefined }],
    ['no client_id', { client_id: undefined }],
    ['no jti', { jti: undefined }],
  ])('refuses a token with %s as TOKEN_INVALID', async (_what, overrides) => {
    const err = await refusedAsync(verify(await sign(claims(overrides))));
    expect(err.code).toBe('TOKEN_INVALID');
    expect(err.status).toBe(401);
  });

  it('refuses a token issued one hour in the future as TOKEN_INVALID', async () => {
    const token = await sign(claims({ iat: nowSeconds() + 3600, exp: nowSeconds() + 4200 }));
    const err = await refusedAsync(verify(token));
    expect(err.code).toBe('TOKEN_INVALID');
    expect(err.status).toBe(401);
  });

  it('refuses a token whose typ is not at+jwt (an ID token, say)', async () => {
    const err = await refusedAsync(verify(await sign(claims(), { header: { typ: 'JWT' } })));
    expect(err.code).toBe('TOKEN_INVALID');
  });

  it('refuses an expired token as TOKEN_EXPIRED', async () => {
    const token = await sign(claims({ iat: nowSeconds() - 700, exp: nowSeconds() - 60 }));
    const err = await refusedAsync(verify(token));
    expect(err.code).toBe('TOKEN_EXPIRED');
    expect(err.status).toBe(401);
  });

  it('refuses a token once the clock passes its exp', async () => {
    const token = await sign();
    const later = manualClock(new Date(clock.now().getTime() + 11 * 60_000));
    const verifyLater = createTokenVerifier({
      jwks: { keys: [publicJwk] },
      issuer: ISSUER,
      audience: AUDIENCE,
      clock: later,
    });
    expect((await refusedAsync(verifyLater(token))).code).toBe('TOKEN_EXPIRED');
  });

  it('a verified token is remembered only until its exp: the cache never outlives it', async () => {
    const moving = manualClock(clock.now());
    const cachedVerify = createTokenVerifier({
      jwks: { keys: [publicJwk] },
      issuer: ISSUER,
      audience: AUDIENCE,
      clock: moving,
    });
    const token = await sign();
    expect((await cachedVerify(token)).sub).toBeTruthy();
    expect((await cachedVerify(token)).sub).toBeTruthy(); // from the cache
    moving.advance(11 * 60_000);
    expect((await refusedAsync(cachedVerify(token))).code).toBe('TOKEN_EXPIRED');
  });

  it('a forged token is refused every time, cache or not', async () => {
    const token = await sign();
    const [h, p] = token.split('.');
    const forged = `${h}.${p}.${'A'.repeat(86)}`;
    expect((await verify(token)).sub).toBeTruthy();
    for (let i = 0; i < 2; i++)
      expect((await refusedAsync(verify(forged))).code).toBe('TOKEN_INVALID');
  });

  it('refuses an unsigned token (alg none)', async () => {
    const token = `${b64url({ alg: 'none', typ: 'at+jwt', kid: 'portal-1' })}.${b64url(claims())}.`;
    const err = await refusedAsync(verify(token));
    expect(err.code).toBe('TOKEN_INVALID');
  });

  it('refuses an HS256 token keyed with the public key bytes (key confusion)', async () => {
    for (const secret of [publicSpki, JSON.stringify(publicJwk)]) {
      const token = await sign(claims(), {
        key: new TextEncoder().encode(secret),
        header: { alg: 'HS256' },
      });
      const err = await refusedAsync(verify(token));
      expect(err.code).toBe('TOKEN_INVALID');
    }
  });

  it("refuses a token signed by another key under the portal's kid", async () => {
    const err = await refusedAsync(verify(await sign(claims(), { key: otherPrivateKey })));
    expect(err.code).toBe('TOKEN_INVALID');
  });

  it('refuses a token with a tampered payload', async () => {
    const [header, , signature] = (await sign()).split('.');
    const forged = `${header}.${b64url(claims({ sub: 'someone-else' }))}.${signature}`;
    expect((await refusedAsync(verify(forged))).code).toBe('TOKEN_INVALID');
  });

  it('refuses garbage', async () => {
    expect((await refusedAsync(verify('not-a-jwt'))).code).toBe('TOKEN_INVALID');
  });
});

describe('checkCertificateBinding', () => {
  const bound = (cnf?: AccessTokenClaims['cnf']) =>
    ({ sub: 's', client_id: 'c', scope: 'openid', consent_id: 'k', cnf }) as AccessTokenClaims;

  it('passes when the token is bound to the certificate of the connection', () => {
    expect(() =>
      checkCertificateBinding(bound({ 'x5t#S256': THUMBPRINT }), THUMBPRINT),
    ).not.toThrow();
  });

  it('refuses a token bound to nothing as TOKEN_NOT_BOUND', () => {
    for (const cnf of [undefined, {}]) {
      const err = refusedBy(() => checkCertificateBinding(bound(cnf), THUMBPRINT));
      expect(err.code).toBe('TOKEN_NOT_BOUND');
      expect(err.status).toBe(401);
    }
  });

  it('leaves a DPoP-bound token to the DPoP proof check', () => {
    expect(() =>
      checkCertificateBinding(bound({ jkt: 'dpop-thumbprint' }), undefined),
    ).not.toThrow();
  });

  it('refuses a token bound to another certificate, or with no client certificate', () => {
    for (const peer of ['another-thumbprint', undefined, '']) {
      const err = refusedBy(() => checkCertificateBinding(bound({ 'x5t#S256': THUMBPRINT }), peer));
      expect(err.code).toBe('TOKEN_CERTIFICATE_MISMATCH');
      expect(err.status).toBe(401);
    }
  });
});

const CLAIMS = {
  sub: 'pairwise-sub-1',
  client_id: 'partner-bank',
  scope: 'openid fullname contacts snils',
  consent_id: 'consent-1',
} as AccessTokenClaims;

describe('checkPartner', () => {
  it('passes for the active partner the token was issued to', () => {
    expect(() =>
      checkPartner({ client_id: 'partner-bank', status: 'active' }, CLAIMS),
    ).not.toThrow();
  });

  it('refuses an unknown certificate or a partner other than the token holder', () => {
    for (const partner of [undefined, { client_id: 'partner-other', status: 'active' }]) {
      const err = refusedBy(() => checkPartner(partner, CLAIMS));
      expect(err.code).toBe('PARTNER_UNKNOWN');
      expect(err.status).toBe(403);
    }
  });

  it('refuses a suspended partner', () => {
    const err = refusedBy(() =>
      checkPartner({ client_id: 'partner-bank', status: 'suspended' }, CLAIMS),
    );
    expect(err.code).toBe('PARTNER_SUSPENDED');
    expect(err.status).toBe(403);
  });
});

const NOW = new Date('2026-12-01T09:00:00Z');
const consent = (overrides: Partial<Consent> = {}): Consent => ({
  id: 'consent-1',
  citizenId: 'citizen-1',
  clientId: 'partner-bank',
  grantId: 'grant-1',
  type: 'CREDIT',
  purposes: ['Кредит'],
  actions: ['READ'],
  scopes: ['fullname', 'contacts'],
  applicationRef: null,
  origin: 'partner',
  clientRefSealed: null,
  status: 'active',
  grantedAt: new Date('2026-11-01T09:00:00Z'),
  expiresAt: new Date('2026-12-31T09:00:00Z'),
  createdAt: new Date('2026-11-01T09:00:00Z'),
  updatedAt: new Date('2026-11-01T09:00:00Z'),
  ...overrides,
});

describe('checkConsentActive', () => {
  it('passes for an active consent of this partner before its end', () => {
    expect(() => checkConsentActive(consent(), CLAIMS, NOW)).not.toThrow();
  });

  it.each([
    ['missing', undefined],
    ['of another partner', consent({ clientId: 'partner-other' })],
    ['revoked', consent({ status: 'revoked' })],
    ['marked expired', consent({ status: 'expired' })],
    ['past its end', consent({ expiresAt: new Date('2026-12-01T08:59:59Z') })],
    ['ending at this very moment', consent({ expiresAt: NOW })],
  ])('refuses a consent that is %s as 403 CONSENT_INACTIVE', (_what, c) => {
    const err = refusedBy(() => checkConsentActive(c, CLAIMS, NOW));
    expect(err.code).toBe('CONSENT_INACTIVE');
    expect(err.status).toBe(403);
  });

  it('refuses a paused consent as 403 CONSENT_PAUSED: the partner keeps what it stored', () => {
    const err = refusedBy(() => checkConsentActive(consent({ status: 'paused' }), CLAIMS, NOW));
    expect(err.code).toBe('CONSENT_PAUSED');
    expect(err.status).toBe(403);
  });

  it('refuses a consent still waiting for its partner (J1 pending) as CONSENT_INACTIVE', () => {
    const err = refusedBy(() => checkConsentActive(consent({ status: 'pending' }), CLAIMS, NOW));
    expect(err.code).toBe('CONSENT_INACTIVE');
  });

  it('says why in the detail', () => {
    expect(
      refusedBy(() => checkConsentActive(consent({ status: 'revoked' }), CLAIMS, NOW)).message,
    ).toContain('revoked');
    expect(
      refusedBy(() => checkConsentActive(consent({ expiresAt: NOW }), CLAIMS, NOW)).message,
    ).toContain('expired');
  });
});

describe('checkSubject', () => {
  it('passes for the subject the partner received', () => {
    expect(() => checkSubject(CLAIMS, 'pairwise-sub-1')).not.toThrow();
  });

  it('answers 404 SUBJECT_MISMATCH for any other person', () => {
    const err = refusedBy(() => checkSubject(CLAIMS, 'pairwise-sub-2'));
    expect(err.code).toBe('SUBJECT_MISMATCH');
    expect(err.status).toBe(404);
  });
});

describe('grantedScopes', () => {
  it('is what both the token and the consent grant, plus openid', () => {
    // Token: openid fullname contacts snils; consent (narrowed since): fullname, contacts, inn.
    const scopes = grantedScopes(CLAIMS, consent({ scopes: ['fullname', 'contacts', 'inn'] }));
    expect([...scopes].sort()).toEqual(['contacts', 'fullname', 'openid']);
  });

  it('is only openid when nothing overlaps', () => {
    const scopes = grantedScopes(
      { ...CLAIMS, scope: 'openid birthdate' },
      consent({ scopes: ['fullname'] }),
    );
    expect([...scopes]).toEqual(['openid']);
  });
});
