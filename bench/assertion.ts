import { createPrivateKey, randomUUID, sign, type JsonWebKey } from 'node:crypto';

/**
 * private_key_jwt (RFC 7523) client assertions, signed synchronously with node:crypto so
 * a load generator can mint one per request inside autocannon's `setupRequest`. Each
 * carries a fresh jti: oidc-provider refuses a replayed assertion.
 */
export function assertionSigner(opts: {
  jwk: Record<string, unknown>;
  clientId: string;
  /** The issuer identifier: the audience FAPI 2.0 wants in client assertions. */
  audience: string;
}): () => string {
  const key = createPrivateKey({ key: opts.jwk as JsonWebKey, format: 'jwk' });
  const header = b64(JSON.stringify({ alg: 'ES256', kid: opts.jwk.kid, typ: 'JWT' }));
  return () => {
    const now = Math.floor(Date.now() / 1000);
    const payload = b64(
      JSON.stringify({
        iss: opts.clientId,
        sub: opts.clientId,
        aud: opts.audience,
        jti: randomUUID(),
        iat: now,
        exp: now + 60,
      }),
    );
    const input = `${header}.${payload}`;
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

/** The form body of a refresh_token grant authenticated with a client assertion. */
export function refreshGrantBody(refreshToken: string, assertion: string): string {
  return new URLSearchParams({
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  }).toString();
}
