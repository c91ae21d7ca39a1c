import Fastify, { type FastifyInstance } from 'fastify';
import { createMtlsServerOptions } from '../src/platform/mtls/index.js';
import type { Pki } from '../src/platform/pki/index.js';
import { readAccessToken } from '../src/portal/partner-api/access-checks.js';

/**
 * The yardstick: a bare Fastify hello-world on the partner listener's exact TLS settings
 * (TLS 1.3 only, client certificate required and verified against the partner CA, the
 * portal's own listener certificate), on 127.0.0.1. Whatever it serves per second is
 * what this machine, Node and TLS allow; the other figures are ratios to it.
 *
 * GET /verified is the same hello-world behind the data API's own access-token check
 * (ES256 signature and claims, `createTokenVerifier`) and nothing else: what verifying
 * every request costs, with no database.
 */
export async function startBaseline(
  pki: Pki,
  verifyAccessToken: (token: string) => Promise<unknown>,
): Promise<{ origin: string; app: FastifyInstance; close(): Promise<void> }> {
  const app = Fastify({
    logger: false,
    https: createMtlsServerOptions({
      caPem: pki.caPem,
      certPem: pki.serverCertPem,
      keyPem: pki.serverKeyPem,
    }),
  });
  app.get('/', async () => ({ hello: 'world' }));
  app.get('/verified', async (request) => {
    await verifyAccessToken(readAccessToken(request.headers.authorization).token);
    return { hello: 'world' };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  return { origin: `https://127.0.0.1:${port}`, app, close: () => app.close() };
}
