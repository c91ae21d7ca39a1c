import type { Kysely } from 'kysely';
import cliProgress from 'cli-progress';
import type { Config } from '../../config/config.js';
import { loadAuditSigner } from '../../platform/audit/audit-key.js';
import type { AuditTables } from '../../platform/audit/audit-log.js';
import { verifyAuditLog } from '../../platform/audit/audit-verify.js';
import { createLogger } from '../../platform/http/logger.js';
import { openServiceRuntime } from '../../platform/runtime/service-runtime.js';
import type { ServiceKeyTables } from '../../platform/runtime/service-keys.js';
import { portalMigrations } from '../migrations.js';

/**
 * `soglasie audit verify`: opens the portal's database the way `migrate` does (the
 * embedded one only while the portal is stopped; PORTAL_DATABASE_URL at any time),
 * recomputes the audit log's Merkle tree and checks every checkpoint against it. Resolves
 * with the one-line report; throws AuditLogTamperedError (ERR_AUDIT_TAMPERED, naming the
 * first bad index) when something does not hold.
 */
export async function auditVerifyCommand(config: Config): Promise<string> {
  const logger = createLogger({ name: 'audit', level: 'warn' });
  const runtime = await openServiceRuntime({
    service: 'portal',
    config,
    migrations: portalMigrations,
    logger,
  });
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { format: 'audit verify [{bar}] {value}/{total} entries', stream: process.stderr },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  try {
    const signer = await loadAuditSigner(
      runtime.db as unknown as Kysely<ServiceKeyTables>,
      runtime.keyring,
      runtime.clock.now(),
    );
    let started = false;
    const result = await verifyAuditLog(runtime.db as unknown as Kysely<AuditTables>, signer, {
      onProgress: (done, total) => {
        if (!bar || total < 50_000) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
    }).finally(() => bar?.stop());
    const uncovered = result.entries - result.checkpointedSize;
    return (
      `audit log OK: ${result.entries} entries, ${result.checkpoints} signed checkpoint${result.checkpoints === 1 ? '' : 's'} ` +
      `(each root recomputed, consecutive ones proven consistent), ${result.nodes} stored nodes; ` +
      `${uncovered} newest entries await the next checkpoint; ${(result.ms / 1000).toFixed(1)} s`
    );
  } finally {
    await runtime.close();
  }
}
