import { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { readAdminToken } from '../platform/runtime/admin-token.js';

/**
 * `soglasie partner revoke-cert --client-id X`: revokes the partner's client certificate
 * through the running portal's loopback admin API. The mTLS listener refuses it from the
 * next request on (docs/keys.md).
 */
export interface RevokedCertificate {
  client_id: string;
  certificate_thumbprint: string;
  certificate_serial: string;
  revoked_at: string;
  already_revoked: boolean;
}

export async function revokePartnerCertificate(opts: {
  portalAdminUrl: string;
  adminToken: string;
  clientId: string;
  reason?: string | undefined;
}): Promise<RevokedCertificate> {
  let res: Response;
  try {
    res = await fetch(
      `${opts.portalAdminUrl}/admin-api/partners/${encodeURIComponent(opts.clientId)}/revoke-certificate`,
      {
        method: 'POST',
        headers: {
          authorization: `Bearer ${opts.adminToken}`,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(opts.reason ? { reason: opts.reason } : {}),
        signal: AbortSignal.timeout(10_000),
      },
    );
  } catch {
    throw Object.assign(
      new Error(`the portal does not answer at ${opts.portalAdminUrl}: is it running?`),
      { code: 'ERR_PORTAL_UNREACHABLE' },
    );
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    throw Object.assign(
      new Error(
        `the portal refused: ${res.status} ${String(body.code ?? '')} ${String(body.detail ?? '')}`.trim(),
      ),
      { code: 'ERR_REVOKE_REFUSED' },
    );
  }
  return body as unknown as RevokedCertificate;
}

/** Adds `revoke-cert` to the `partner` command. */
export function addRevokeCertCommand(partner: Command): void {
  partner
    .command('revoke-cert')
    .description(
      "Revoke a partner's client certificate on the running portal: the mTLS listener refuses it at once.",
    )
    .requiredOption('--client-id <id>', 'the partner, e.g. partner-AbC…')
    .option('--reason <text>', 'why (kept with the revocation record)')
    .action(async (opts: { clientId: string; reason?: string }) => {
      const cfg = loadConfig(process.env, { serving: false });
      const revoked = await revokePartnerCertificate({
        portalAdminUrl: `http://127.0.0.1:${cfg.portal.httpPort}`,
        adminToken: readAdminToken(cfg.dataDir, 'portal'),
        clientId: opts.clientId,
        reason: opts.reason,
      });
      process.stdout.write(
        `${revoked.already_revoked ? 'Already revoked' : 'Revoked'}: the certificate of ${revoked.client_id} ` +
          `(serial ${revoked.certificate_serial}, x5t#S256 ${revoked.certificate_thumbprint}) since ${revoked.revoked_at}.\n`,
      );
    });
}
