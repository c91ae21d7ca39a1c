import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import { readAdminToken } from '../../src/platform/runtime/admin-token.js';
import { freshPostgresUrl, type TestEngine } from './databases.js';
import { startDemo } from './demo-process.js';
import { E2E_DETAILS, partnerClient } from './partner-client.js';
import { webhookReceiver } from './webhook-receiver.js';

/**
 * The demo on one engine plus a second partner, «Тестовый банк», registered by `partner
 * add` with portal-initiated connections (J1) and subscribed to its webhooks through an
 * outside receiver: the test plays that partner. `prepare` may write files into the data
 * directory before the demo starts (e.g. anomaly-rules.json).
 */
export async function demoWithTestPartner(
  engine: TestEngine,
  opts: { name: string; prepare?: (dataDir: string) => void },
) {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `soglasie-${opts.name}-`));
  opts.prepare?.(dataDir);
  const env: Record<string, string> = { SOGLASIE_DATA_DIR: dataDir };
  const databases =
    engine.name === 'postgres' ? [await freshPostgresUrl(), await freshPostgresUrl()] : [];
  if (databases.length > 0) {
    env.PORTAL_DATABASE_URL = databases[0]!.url;
    env.BANK_DATABASE_URL = databases[1]!.url;
  }
  const demo = await startDemo(env);
  const out = path.join(dataDir, 'test-partner');
  await partnerAdd({
    portalAdminUrl: demo.portalUrl,
    adminToken: readAdminToken(dataDir, 'portal'),
    name: 'Тестовый банк',
    redirectUris: ['https://partner.example/cb'],
    out,
    portalConnect: { client_ref_label: 'Номер договора', request: E2E_DETAILS[0]! },
  });
  const rp = await partnerClient(out);
  const mtlsUrl = new URL(rp.info.mtls_endpoints.token_endpoint!).origin;
  const receiver = await webhookReceiver();
  await receiver.subscribe(rp.post, mtlsUrl);
  return {
    dataDir,
    demo,
    rp,
    mtlsUrl,
    receiver,
    received: receiver.received,
    async close() {
      await receiver.close();
      await rp.close();
      if (demo.child.exitCode === null) await demo.stop();
      rmSync(dataDir, { recursive: true, force: true });
      for (const database of databases) await database.drop();
    },
  };
}
