import {
  createLocalJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Clock } from '../../platform/clock.js';
import { AppError } from '../../platform/http/errors.js';
import type { Consent } from '../consents/consent.js';

/**
 * The data API's access pipeline: one rule per check, in the order they run. Each throws
 * an AccessRefused with a stable code; together they decide whether a partner may read.
 */
export class AccessRefused extends AppError {
  constructor(code: string, status: 401 | 403 | 404, message: string) {
    super(
      code,
      status,
      message,
      'Доступ к данным запрещён.',
      status === 401 ? { 'www-authenticate': `Bearer error="invalid_token"` } : {},
    );
  }
}

export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  client_id: string;
  scope: string;
  consent_id: string;
  cnf?: { 'x5t#S256'?: string; jkt?: string };
}

/** RFC 6750 §2.1 / RFC 9449 §7.1: the token comes in the Authorization header, nowhere else. */
export function readAccessToken(authorization: string | undefined): {
  scheme: 'Bearer' | 'DPoP';
  token: string;
} {
  const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/.exec(authorization ?? '');
  if (!match)
    throw new AccessRefused('TOKEN_MISSING', 401, 'An access token is required (Bearer or DPoP).');
  return { scheme: match[1] as 'Bearer' | 'DPoP', token: match[2]! };
}

/**
 * The portal's published signing keys, as they change: `current()` may be cached briefly,
 * `reload()` reads afresh (for a kid not seen yet) and may refuse to more than once a
 * second. See oidc/signing-keys.ts.
 */
export interface SigningKeySource {
  current(): Promise<JWK[]>;
  reload(): Promise<JWK[]>;
}

/**
 * Verifies against the keys the source publishes now, so tokens of every published key
 * pass (the current one, the next one, and a retired one until its window ends): a kid
 * not in the cached set makes it re-read the keys once before refusing.
 */
function liveKeySet(source: SigningKeySource): JWTVerifyGetKey {
  let keys: JWK[] | undefined;
  let local: JWTVerifyGetKey | undefined;
  const localFor = (fresh: JWK[]) => {
    if (fresh !== keys) {
      keys = fresh;
      local = createLocalJWKSet({ keys: fresh });
    }
    return local!;
  };
  return async (header, token) => {
    const set = localFor(await source.current());
    if (header.kid === undefined || keys!.some((k) => k.kid === header.kid)) {
      return set(header, token);
    }
    return localFor(await source.reload())(header, token);
  };
}

/**
 * RFC 9068: a JWT access token signed by the portal (ES256 only — `alg: none` and any
 * HMAC confusion fail here), issued for the data API, not expired, typ at+jwt.
 */
export function createTokenVerifier(opts: {
  /** Fixed keys, or the live source of the portal's published keys. */
  jwks: { keys: JWK[] } | SigningKeySource;
  issuer: string;
  audience: string;
  clock: Clock;
  /** Verified tokens remembered (bounded); 0 turns the cache off. */
  cacheSize?: number;
}) {
  const keySet = 'keys' in opts.jwks ? createLocalJWKSet(opts.jwks) : liveKeySet(opts.jwks);
  const cache = new VerifiedTokenCache(opts.cacheSize ?? 10_000);
  return async function verifyAccessToken(token: string): Promise<AccessTokenClaims> {
    // A signature checked once need not be checked again until the token expires. Only
    // the signature and claims are cached: the consent is checked live on every read.
    const now = opts.clock.now().getTime();
    const cached = cache.get(token, now);
    if (cached) return cached;
    const claims = await verifyUncached(token);
    cache.set(token, claims);
    return claims;
  };

  async function verifyUncached(token: string): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(token, keySet, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: ['ES256'],
        typ: 'at+jwt',
        clockTolerance: 5,
        maxTokenAge: '15 minutes',
        currentDate: opts.clock.now(),
        requiredClaims: ['sub', 'client_id', 'exp', 'iat', 'jti'],
      });
      if (typeof payload.consent_id !== 'string' || typeof payload.scope !== 'string') {
        throw new AccessRefused('TOKEN_INVALID', 401, 'The access token carries no consent.');
      }
      if (
        typeof payload.iat === 'number' &&
        payload.iat * 1000 > opts.clock.now().getTime() + 5000
      ) {
        throw new AccessRefused('TOKEN_INVALID', 401, 'The access token was issued in the future.');
      }
      return payload as AccessTokenClaims;
    } catch (err) {
      if (err instanceof AccessRefused) throw err;
      if (err instanceof joseErrors.JWTExpired) {
        throw new AccessRefused('TOKEN_EXPIRED', 401, 'The access token has expired.');
      }
      // Deliberately vague: do not help an attacker tune a forgery.
      throw new AccessRefused('TOKEN_INVALID', 401, 'The access token is invalid.');
    }
  }
}

/** A bounded map of verified tokens, oldest evicted first, each valid until its `exp`. */
class VerifiedTokenCache {
  readonly #entries = new Map<string, AccessTokenClaims>();
  constructor(private readonly capacity: number) {}

  get(token: string, now: number): AccessTokenClaims | undefined {
    const claims = this.#entries.get(token);
    if (!claims) return undefined;
    if ((claims.exp ?? 0) * 1000 <= now) {
      this.#entries.delete(token);
      return undefined;
    }
    return claims;
  }

  set(token: string, claims: AccessTokenClaims): void {
    if (this.capacity <= 0) return;
    if (this.#entries.size >= this.capacity) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(token, claims);
  }
}

/**
 * RFC 8705 §3: a certificate-bound token is usable only with the certificate it was issued
 * to. A DPoP-bound token (cnf.jkt) is checked against its proof instead (dpop.ts); a token
 * bound to nothing is refused: FAPI 2.0 requires sender-constrained tokens.
 */
export function checkCertificateBinding(
  claims: AccessTokenClaims,
  peerThumbprint: string | undefined,
) {
  if (claims.cnf?.jkt) return;
  const bound = claims.cnf?.['x5t#S256'];
  if (!bound) {
    throw new AccessRefused('TOKEN_NOT_BOUND', 401, 'The access token is not sender-constrained.');
  }
  if (!peerThumbprint || bound !== peerThumbprint) {
    throw new AccessRefused(
      'TOKEN_CERTIFICATE_MISMATCH',
      401,
      'The access token was issued to another client certificate.',
    );
  }
}

/** The partner behind the certificate is registered and not suspended. */
export function checkPartner(
  partner: { client_id: string; status: string } | undefined,
  claims: AccessTokenClaims,
) {
  if (!partner || partner.client_id !== claims.client_id) {
    throw new AccessRefused(
      'PARTNER_UNKNOWN',
      403,
      'The client certificate belongs to no partner of this token.',
    );
  }
  if (partner.status !== 'active') {
    throw new AccessRefused('PARTNER_SUSPENDED', 403, 'The partner is suspended.');
  }
}

/** The consent is active at this very moment: no stale reads after revocation or expiry. */
export function checkConsentActive(
  consent: Consent | undefined,
  claims: AccessTokenClaims,
  now: Date,
) {
  if (!consent || consent.clientId !== claims.client_id) {
    throw new AccessRefused('CONSENT_INACTIVE', 403, 'There is no consent for this access.');
  }
  if (consent.status === 'paused') {
    // Paused by the citizen (or by the portal's anomaly rules): refused like any inactive
    // consent, but the partner keeps what it stored (the consent has not ended).
    throw new AccessRefused(
      'CONSENT_PAUSED',
      403,
      "The consent is paused (by the citizen, or by the portal's security rules).",
    );
  }
  if (consent.status !== 'active' || consent.expiresAt.getTime() <= now.getTime()) {
    throw new AccessRefused(
      'CONSENT_INACTIVE',
      403,
      `The consent is ${consent.status === 'active' ? 'expired' : consent.status}.`,
    );
  }
}

/** `{oid}` in the path is the subject this partner received; another citizen is not found. */
export function checkSubject(claims: AccessTokenClaims, oid: string) {
  if (claims.sub !== oid) {
    throw new AccessRefused('SUBJECT_MISMATCH', 404, 'No such person for this access token.');
  }
}

/** Scopes usable now: what the token carries and the consent still grants. */
export function grantedScopes(claims: AccessTokenClaims, consent: Consent): Set<string> {
  const inToken = new Set(claims.scope.split(' '));
  return new Set(['openid', ...consent.scopes.filter((s) => inToken.has(s))]);
}
