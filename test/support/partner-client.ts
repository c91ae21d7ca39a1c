import { readFileSync } from 'node:fs';
import path from 'node:path';
import { importJWK, type JWK } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * A relying party built only from what `partner add` wrote and the public openid-client
 * library: the test plays a bank that knows nothing of our code.
 */
export async function partnerClient(partnerDir: string, opts: { withCertificate?: boolean } = {}) {
  const read = (name: string) => readFileSync(path.join(partnerDir, name), 'utf8');
  const info = JSON.parse(read('client.json')) as {
    client_id: string;
    issuer: string;
    redirect_uris: string[];
    mtls_endpoints: Record<string, string>;
  };
  const jwk = JSON.parse(read('signing-key.jwk.json')) as JWK;
  const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
  const agent = new Agent({
    connect: {
      ca: read('ca.pem'),
      ...(opts.withCertificate === false
        ? {}
        : { cert: read('client-cert.pem'), key: read('client-key.pem') }),
    },
  });
  const mtlsFetch = ((url: string, init: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent })) as unknown as client.CustomFetch;
  const config = await client.discovery(
    new URL(info.issuer),
    info.client_id,
    { use_mtls_endpoint_aliases: true, token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt({ key, kid: jwk.kid! }),
    { execute: [client.allowInsecureRequests], [client.customFetch]: mtlsFetch },
  );
  config[client.customFetch] = mtlsFetch;
  /** A plain GET over the same mTLS connection settings. */
  const request = (url: string, headers: Record<string, string> = {}) =>
    undiciFetch(url, { headers, dispatcher: agent });
  return { config, info, agent, request, close: () => agent.close() };
}
