import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import type { ServerOptions } from 'node:https';
import type { Logger } from 'pino';
import { NotFoundError } from './errors.js';
import { sendError, type ErrorPageLook } from './problem.js';

export interface ApiAppOptions {
  logger: Logger;
  /** TLS settings of the listener (the partner API: TLS 1.3 with client certificates). */
  https: ServerOptions;
  look: ErrorPageLook;
  bodyLimit?: number;
  /** The title of its /openapi.json. */
  title?: string;
  /**
   * Runs first on every request, unknown paths and raw handlers included, before any
   * body is read: rate limits and IP blocks. Throw an AppError to refuse.
   */
  guard?: (request: FastifyRequest) => Promise<void>;
}

/**
 * A machine-to-machine API app: no cookies, no pages, no CSRF (callers authenticate with
 * certificates and tokens); problem+json errors with request ids; its routes described
 * at /openapi.json. Does not listen.
 *
 * The OpenAPI plugin records only routes added after it has loaded: await `app.after()`
 * (or any register(), as mountRawHandler does) before adding routes at the top level.
 */
export function createApiApp(opts: ApiAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: opts.logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    https: opts.https,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('cache-control', 'no-store');
  });
  const guard = opts.guard;
  if (guard) app.addHook('onRequest', async (request) => guard(request));
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, opts.look));
  app.setNotFoundHandler((request, reply) =>
    sendError(new NotFoundError('No such endpoint.'), request, reply, opts.look),
  );
  void app.register(swagger, {
    openapi: { info: { title: opts.title ?? 'Soglasie partner API', version: '0.1.0' } },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app as unknown as FastifyInstance;
}
