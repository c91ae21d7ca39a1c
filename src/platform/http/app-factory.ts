import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { VNode } from 'preact';
import type { Clock } from '../clock.js';
import { renderDocument } from '../views/render.js';
import { NotFoundError } from './errors.js';
import { createMetrics } from './metrics.js';
import { ProblemSchema, sendError, type ErrorPageLook } from './problem.js';
import type { SessionStore } from './session.store.js';
import { installSessions } from './sessions.js';

export interface HttpAppOptions {
  service: 'portal' | 'bank';
  look: ErrorPageLook;
  logger: Logger;
  clock: Clock;
  sessions: SessionStore;
  /**
   * The address browsers use. When it is https, responses carry HSTS and cookies are
   * `Secure`; over plain HTTP (the demo on loopback) neither.
   */
  publicUrl?: string;
  /** `Secure` cookies even without an https publicUrl (production always has one). */
  secureCookies: boolean;
  /** Addresses whose X-Forwarded-For is believed; nothing else is. */
  trustedProxies: readonly string[];
  /** Checks the things `/healthz` vouches for (the database); throws when down. */
  health: () => Promise<void>;
  /** Extra origins forms may post to (e.g. the bank's form that redirects to the portal). */
  formActionOrigins?: readonly string[];
  bodyLimit?: number;
}

const SITE_CSS = readFileSync(new URL('../views/site.css', import.meta.url), 'utf8');
const HEALTH_TIMEOUT_MS = 2_000;

declare module 'fastify' {
  interface FastifyReply {
    /** Sends a server-rendered page. */
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any props
    page(vnode: VNode<any>, status?: number): FastifyReply;
  }
}

/**
 * Builds the Fastify app both services share: logs with request ids and redaction,
 * problem+json errors (a Russian page for browsers), helmet with a strict CSP,
 * server-side sessions with CSRF, /healthz, /metrics and the OpenAPI document.
 * It does not listen: callers (and tests, through inject) decide that.
 */
export async function createHttpApp(opts: HttpAppOptions) {
  const app = Fastify({
    loggerInstance: opts.logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
    trustProxy: opts.trustedProxies.length > 0 ? [...opts.trustedProxies] : false,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<TypeBoxTypeProvider>();

  const metrics = createMetrics(opts.service);
  // HSTS is meaningful only over HTTPS (RFC 6797 §7.2) and must never pin a plain-HTTP
  // demo origin; Secure cookies go with it, and with production whatever the URL says.
  const https = opts.publicUrl?.startsWith('https:') ?? false;
  const secureCookies = opts.secureCookies || https;

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(swagger, {
    openapi: {
      info: { title: `Soglasie ${opts.service} API`, version: '0.1.0' },
    },
  });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: opts.bodyLimit ?? 64 * 1024 });
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        formAction: ["'self'", ...(opts.formActionOrigins ?? [])],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
      },
    },
    hsts: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'no-referrer' },
    // Older browsers ignore frame-ancestors: no framing there either.
    frameguard: { action: 'deny' },
  });

  installSessions(app as unknown as FastifyInstance, {
    store: opts.sessions,
    clock: opts.clock,
    cookieName: secureCookies ? `__Host-${opts.service}_session` : `${opts.service}_session`,
    secure: secureCookies,
  });

  app.decorateReply('page', function (this: FastifyReply, vnode: VNode<unknown>, status = 200) {
    // Pages carry personal data: never cache them.
    return this.status(status)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(renderDocument(vnode));
  });

  app.setErrorHandler((error, request, reply) => sendError(error, request, reply, opts.look));
  app.setNotFoundHandler((request, reply) =>
    sendError(new NotFoundError(), request, reply, opts.look),
  );

  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness and database reachability',
        response: {
          200: Type.Object({ status: Type.Literal('ok'), service: Type.String() }),
          503: ProblemSchema,
        },
      },
    },
    async (_request, reply) => {
      try {
        await withTimeout(opts.health(), HEALTH_TIMEOUT_MS);
        return { status: 'ok' as const, service: opts.service };
      } catch (err) {
        app.log.warn({ err }, 'health check failed');
        return reply.status(503).type('application/problem+json').send({
          type: 'urn:soglasie:problem:unhealthy',
          title: 'Service Unavailable',
          status: 503,
          code: 'UNHEALTHY',
          detail: 'The database is not reachable.',
        });
      }
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/assets/site.css', { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(SITE_CSS),
  );

  // Route modules take the plain instance type; the pino logger type would otherwise
  // leak into every signature.
  return app as unknown as FastifyInstance;
}

export type AppInstance = Awaited<ReturnType<typeof createHttpApp>>;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
