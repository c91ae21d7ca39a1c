import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { createCertificateSigningRequest } from '../platform/pki/index.js';

/**
 * What a partner runs to join the portal: it makes its own keys (they never leave its
 * machine), sends the public signing key and a certificate request to the portal's
 * admin API, and writes everything it needs into one directory (CONTRACT.md).
 */
export interface PartnerAddOptions {
  /** The portal web address reachable on loopback, e.g. http://127.0.0.1:3000. */
  portalAdminUrl: string;
  adminToken: string;
  name: string;
  redirectUris: string[];
  out: string;
  /** Tokens bound to the client certificate (default) or to a DPoP key. */
  senderConstraint?: 'mtls' | 'dpop';
  /**
   * J1: accept connections citizens start on the portal. `request` is the
   * `soglasie_consent` authorization details entry the consent screen shows.
   */
  portalConnect?: { client_ref_label: string; request: Record<string, unknown> } | undefined;
  /** Its own partner API rate limit (requests per window) instead of the portal's default. */
  rateLimit?: number | undefined;
}

export interface PartnerFiles {
  clientJson: string;
  signingKey: string;
  clientCert: string;
  clientKey: string;
  ca: string;
}

export const PARTNER_FILES = {
  clientJson: 'client.json',
  signingKey: 'signing-key.jwk.json',
  clientCert: 'client-cert.pem',
  clientKey: 'client-key.pem',
  ca: 'ca.pem',
} as const;

export class PartnerAddError extends Error {
  constructor(
    readonly code: 'ERR_PORTAL_UNREACHABLE' | 'ERR_PARTNER_REFUSED',
    message: string,
  ) {
    super(message);
  }
}

export async function partnerAdd(
  opts: PartnerAddOptions,
): Promise<{ clientId: string; files: PartnerFiles }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const signingJwk = { ...publicJwk, kid, alg: 'ES256', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
  const csr = await createCertificateSigningRequest({
    commonName: 'partner',
    organization: opts.name.slice(0, 64),
  });

  let res: Response;
  try {
    res = await fetch(`${opts.portalAdminUrl}/admin-api/partners`, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: opts.name,
        redirect_uris: opts.redirectUris,
        signing_jwk: signingJwk,
        csr: csr.csrPem,
        ...(opts.senderConstraint ? { sender_constraint: opts.senderConstraint } : {}),
        ...(opts.portalConnect ? { portal_connect: opts.portalConnect } : {}),
        ...(opts.rateLimit ? { rate_limit: opts.rateLimit } : {}),
      }),
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    throw new PartnerAddError(
      'ERR_PORTAL_UNREACHABLE',
      `The portal does not answer at ${opts.portalAdminUrl}. Start it first (npm start), then run partner add again.`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status !== 201) {
    throw new PartnerAddError(
      'ERR_PARTNER_REFUSED',
      `The portal refused the registration (${res.status}): ${String(body.detail ?? body.error ?? 'no reason given')}`,
    );
  }

  await mkdir(opts.out, { recursive: true, mode: 0o700 });
  const file = (name: string) => path.join(opts.out, name);
  const files: PartnerFiles = {
    clientJson: file(PARTNER_FILES.clientJson),
    signingKey: file(PARTNER_FILES.signingKey),
    clientCert: file(PARTNER_FILES.clientCert),
    clientKey: file(PARTNER_FILES.clientKey),
    ca: file(PARTNER_FILES.ca),
  };
  const secret = async (target: string, content: string) => {
    await writeFile(target, content, { mode: 0o600 });
    await chmod(target, 0o600);
  };
  await secret(files.signingKey, `${JSON.stringify(privateJwk, null, 2)}\n`);
  await secret(files.clientKey, csr.keyPem);
  await writeFile(files.clientCert, String(body.client_certificate));
  await writeFile(files.ca, String(body.ca_certificate));
  await writeFile(
    files.clientJson,
    `${JSON.stringify(
      {
        client_id: body.client_id,
        issuer: body.issuer,
        redirect_uris: body.redirect_uris,
        mtls_endpoints: body.mtls_endpoints,
        certificate_thumbprint: body.certificate_thumbprint,
        portal_connect: body.portal_connect === true,
      },
      null,
      2,
    )}\n`,
  );
  return { clientId: String(body.client_id), files };
}
