import { readFileSync } from 'node:fs';
import path from 'node:path';
import { importJWK, type JWK } from 'jose';
import * as client from 'openid-client';
import { Agent, fetch as undiciFetch } from 'undici';
import { HttpClient } from './demo-process.js';

const PASSWORD = 'Demo-Passw0rd!';

/** A realistic request: a debit card application with optional contacts and orders. */
export const E2E_SCOPES = 'openid fullname birthdate snils inn id_doc addresses contacts orders';
export const E2E_DETAILS = [
  {
    type: 'soglasie_consent',
    sysname: 'DEBIT_CARD',
    purposes: ['Оформление дебетовой карты без визита в офис'],
    actions: ['READ_AND_STORE'],
    scopes: ['fullname', 'birthdate', 'snils', 'inn', 'id_doc', 'addresses', 'contacts', 'orders'],
    optional_scopes: ['contacts', 'orders'],
    duration_days: 90,
  },
];

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
  /** A JSON POST over the same mTLS connection settings. */
  const post = (url: string, json: unknown) =>
    undiciFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(json),
      dispatcher: agent,
    });
  return { config, info, agent, request, post, close: () => agent.close() };
}

export async function outboxCode(base: string, to: string): Promise<string> {
  const res = await fetch(`${base}/dev/outbox?to=${encodeURIComponent(to)}`);
  // The newest message that carries a code: notices (e.g. a revocation SMS) carry none.
  return ((await res.json()) as { code?: string }[]).find((m) => m.code)!.code!;
}

/**
 * The citizen's browser: from the authorization URL through the portal's login, the
 * consent screen (leaving `uncheck` unticked) and the code, to the redirect back.
 */
export async function citizenApproves(
  portalUrl: string,
  authorizationUrl: URL,
  opts: { uncheck?: string[]; phone?: string; browser?: HttpClient } = {},
): Promise<{ callback: URL; consentPage: string }> {
  const phone = opts.phone ?? '+79990000001';
  const browser = opts.browser ?? new HttpClient(portalUrl);
  let res = await browser.request(authorizationUrl.href);
  let consentPage = '';
  for (let hops = 0; hops < 20; hops++) {
    if (res.status === 303 || res.status === 302) {
      const location = new URL(res.location!, portalUrl);
      if (location.origin !== new URL(portalUrl).origin) return { callback: location, consentPage };
      res = await browser.request(location.href);
      continue;
    }
    if (res.status !== 200) {
      throw Object.assign(
        new Error(`expected a page, got ${res.status}: ${res.body.slice(0, 500)}`),
        {
          status: res.status,
          body: res.body,
        },
      );
    }
    if (res.body.includes('data-testid="login-username"')) {
      res = await browser.request('/login', {
        form: { _csrf: HttpClient.csrf(res.body), username: phone, password: PASSWORD },
      });
      const codePage = await browser.request(res.location!);
      res = await browser.request('/login/code', {
        form: {
          _csrf: HttpClient.csrf(codePage.body),
          code: await outboxCode(portalUrl, phone),
        },
      });
    } else if (res.body.includes('data-testid="consent-approve"')) {
      consentPage = res.body;
      const action = /action="(\/interaction\/[^"]+\/confirm)"/.exec(res.body)![1]!;
      const scopes = [...res.body.matchAll(/name="scope" value="([a-z_]+)"/g)].map((m) => m[1]!);
      const form = new URLSearchParams({ _csrf: HttpClient.csrf(res.body) });
      for (const s of new Set(scopes)) if (!opts.uncheck?.includes(s)) form.append('scope', s);
      res = await browser.request(action, { form });
    } else if (res.body.includes('/approve"')) {
      const action = /action="(\/interaction\/[^"]+\/approve)"/.exec(res.body)![1]!;
      res = await browser.request(action, {
        form: {
          _csrf: HttpClient.csrf(res.body),
          code: await outboxCode(portalUrl, phone),
        },
      });
    } else {
      throw new Error(`unexpected page:\n${res.body.slice(0, 800)}`);
    }
  }
  throw new Error('too many redirects');
}

/** PAR with PKCE S256 and the e2e consent request, as a bank starts a link. */
export async function pushedAuthorization(rp: {
  config: client.Configuration;
  info: { redirect_uris: string[] };
}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = await client.buildAuthorizationUrlWithPAR(rp.config, {
    redirect_uri: rp.info.redirect_uris[0]!,
    scope: E2E_SCOPES,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    authorization_details: JSON.stringify(E2E_DETAILS),
  });
  return { url, codeVerifier, state };
}
