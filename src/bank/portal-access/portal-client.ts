import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { importJWK, SignJWT, type JWK } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';

/**
 * The bank's OpenID client for the portal: FAPI 2.0 with PAR, PKCE, private_key_jwt and
 * certificate-bound tokens over mTLS, configured only from what `soglasie partner add`
 * wrote (client.json, signing key, client certificate, CA).
 */
export interface PartnerMaterial {
  clientId: string;
  issuer: string;
  redirectUri: string;
  dataApi: string;
  /** Base URL of the portal's partner (mTLS) listener. */
  mtlsBase: string;
}

export class PortalUnavailable extends Error {
  readonly code = 'ERR_PORTAL_UNAVAILABLE';
}

export interface PortalClient {
  material: PartnerMaterial;
  config(): Promise<client.Configuration>;
  /** A GET over mTLS with the bank's certificate; `signal` aborts it (with its reason). */
  get(
    url: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: string; contentType: string }>;
  /** A JSON POST over mTLS with the bank's certificate. */
  post(url: string, json: unknown): Promise<{ status: number; body: string }>;
  /** Signs a statement with the bank's registered key (the one behind private_key_jwt). */
  sign(claims: Record<string, unknown>, typ: string): Promise<string>;
  close(): Promise<void>;
}

export function loadPortalClient(
  partnerDir: string,
  opts: { allowHttpIssuer: boolean },
): PortalClient | undefined {
  const file = (name: string) => path.join(partnerDir, name);
  if (!existsSync(file('client.json'))) return undefined;
  const info = JSON.parse(readFileSync(file('client.json'), 'utf8')) as {
    client_id: string;
    issuer: string;
    redirect_uris: string[];
    mtls_endpoints: { data_api: string };
  };
  const jwk = JSON.parse(readFileSync(file('signing-key.jwk.json'), 'utf8')) as JWK;
  const agent = new Agent({
    connect: {
      ca: readFileSync(file('ca.pem'), 'utf8'),
      cert: readFileSync(file('client-cert.pem'), 'utf8'),
      key: readFileSync(file('client-key.pem'), 'utf8'),
    },
    connectTimeout: 5_000,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  const mtlsFetch = ((url: string, init: object) =>
    undiciFetch(url, { ...init, dispatcher: agent })) as unknown as client.CustomFetch;

  let configuration: Promise<client.Configuration> | undefined;
  const config = () => {
    configuration ??= (async () => {
      const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
      try {
        const c = await client.discovery(
          new URL(info.issuer),
          info.client_id,
          { use_mtls_endpoint_aliases: true, token_endpoint_auth_method: 'private_key_jwt' },
          client.PrivateKeyJwt({ key, kid: jwk.kid! }),
          {
            ...(opts.allowHttpIssuer ? { execute: [client.allowInsecureRequests] } : {}),
            [client.customFetch]: mtlsFetch,
            timeout: 10,
          },
        );
        c[client.customFetch] = mtlsFetch;
        return c;
      } catch (err) {
        configuration = undefined; // try again next time: the portal may come back
        throw new PortalUnavailable(
          `The portal at ${info.issuer} is unreachable: ${(err as Error).message}`,
        );
      }
    })();
    return configuration;
  };

  return {
    material: {
      clientId: info.client_id,
      issuer: info.issuer,
      redirectUri: info.redirect_uris[0]!,
      dataApi: info.mtls_endpoints.data_api,
      mtlsBase: new URL(info.mtls_endpoints.data_api).origin,
    },
    config,
    async get(url, headers, signal) {
      try {
        const res = await undiciFetch(url, {
          headers,
          dispatcher: agent,
          ...(signal ? { signal } : {}),
        });
        return {
          status: res.status,
          body: await res.text(),
          contentType: res.headers.get('content-type') ?? '',
        };
      } catch (err) {
        // Cancelled on purpose (the consent ended): the caller's reason, not an outage.
        if (signal?.aborted) throw signal.reason;
        throw new PortalUnavailable(
          `The portal data API is unreachable: ${(err as Error).message}`,
        );
      }
    },
    async post(url, json) {
      try {
        const res = await undiciFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(json),
          dispatcher: agent,
        });
        return { status: res.status, body: await res.text() };
      } catch (err) {
        throw new PortalUnavailable(
          `The portal partner API is unreachable: ${(err as Error).message}`,
        );
      }
    },
    async sign(claims, typ) {
      const key = (await importJWK(jwk, 'ES256')) as CryptoKey;
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: jwk.kid!, typ })
        .setIssuer(info.client_id)
        .setAudience(info.issuer)
        .setIssuedAt()
        .setJti(randomUUID())
        .sign(key);
    },
    close: () => agent.close(),
  };
}
