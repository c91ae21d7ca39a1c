import type { FastifyInstance, HTTPMethods } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RawHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface RawMountOptions {
  /**
   * For a handler that reads X-Forwarded-* (Koa with `proxy = true`): the scheme the
   * browser uses, i.e. the public URL's. The X-Forwarded-* headers the client sent are
   * replaced by this scheme and by the client address Fastify settled on (which believes
   * X-Forwarded-For only from trusted proxies); X-Forwarded-Host is dropped (Host counts).
   */
  forwardedProto?: 'http' | 'https';
}

/**
 * Hands the given routes to a raw Node handler (oidc-provider's Koa app) untouched:
 * Fastify must not read the body, so these routes live in a scope without body parsers.
 */
export async function mountRawHandler(
  app: FastifyInstance,
  handler: RawHandler,
  routes: readonly (readonly [HTTPMethods | HTTPMethods[], string])[],
  options: RawMountOptions = {},
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
          if (options.forwardedProto) {
            const headers = request.raw.headers;
            headers['x-forwarded-proto'] = options.forwardedProto;
            headers['x-forwarded-for'] = request.ip;
            delete headers['x-forwarded-host'];
          }
          reply.hijack();
          await handler(request.raw, reply.raw);
        },
      });
    }
  });
}
