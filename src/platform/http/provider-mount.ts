import type { FastifyInstance, HTTPMethods } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

/**
 * Hands the given routes to a raw Node handler (oidc-provider's Koa app) untouched:
 * Fastify must not read the body, so these routes live in a scope without body parsers.
 */
export async function mountRawHandler(
  app: FastifyInstance,
  handler: RawHandler,
  routes: readonly (readonly [HTTPMethods | HTTPMethods[], string])[],
): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
    for (const [method, url] of routes) {
      scope.route({
        method,
        url,
        schema: { hide: true },
        // Token requests authenticate with client assertions or certificates, not cookies.
        config: { csrf: false },
        handler: async (request, reply) => {
          reply.hijack();
          await handler(request.raw, reply.raw);
        },
      });
    }
  });
}
