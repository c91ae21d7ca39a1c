import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { DevOutbox } from './notifier.js';

/** GET /dev/outbox?to=… (CONTRACT.md): demo mode only; the route does not exist otherwise. */
export function registerDevOutbox(app: FastifyInstance, outbox: DevOutbox): void {
  app.get(
    '/dev/outbox',
    {
      schema: {
        hide: true,
        querystring: Type.Object({ to: Type.Optional(Type.String({ maxLength: 254 })) }),
      },
    },
    async (request, reply) => {
      const { to } = request.query as { to?: string };
      return reply.header('cache-control', 'no-store').send(outbox.list(to));
    },
  );
}
