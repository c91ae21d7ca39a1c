import type { FastifyInstance } from 'fastify';
import type { PortalEvents } from './portal-events.js';

/** The receiver of the portal's signed webhooks. The raw body is what the signature covers. */
export async function registerPortalEventRoutes(
  app: FastifyInstance,
  events: PortalEvents,
): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: 64 * 1024 },
      (_req, body, done) => done(null, body),
    );
    scope.post(
      '/webhooks/portal',
      // Authenticated by its signature, not by a browser session: no CSRF token.
      { config: { csrf: false }, schema: { hide: true } },
      async (request, reply) => {
        const headers: Record<string, string> = {};
        for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
          const value = request.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        const outcome = await events.receive(String(request.body ?? ''), headers);
        return reply.status(outcome === 'duplicate' ? 200 : 204).send();
      },
    );
  });
}
