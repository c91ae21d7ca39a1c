import type { JWK } from 'jose';
import { systemClock } from '../src/platform/clock.js';
import { createTokenVerifier } from '../src/portal/partner-api/access-checks.js';
import { dataApiResource } from '../src/portal/oidc/provider.js';

/**
 * The data API's own access-token check (`createTokenVerifier`: ES256 through
 * jose/WebCrypto, then the claims), built from the portal's published JWKS exactly as
 * the portal builds it, checked once against the real token.
 */
export async function dataApiTokenVerifier(opts: {
  portalUrl: string;
  issuer: string;
  mtlsUrl: string;
  accessToken: string;
}): Promise<(token: string) => Promise<unknown>> {
  const jwks = (await (await fetch(`${opts.portalUrl}/jwks`)).json()) as { keys: JWK[] };
  const verify = createTokenVerifier({
    jwks,
    issuer: opts.issuer,
    audience: dataApiResource(opts.mtlsUrl),
    clock: systemClock,
  });
  await verify(opts.accessToken); // fails loudly here if the set-up is wrong
  return verify;
}
