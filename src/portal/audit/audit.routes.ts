import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { AuditTree } from '../../platform/audit/audit-tree.js';
import { NotFoundError } from '../../platform/http/errors.js';

const Sizes = Type.Object({
  first: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
  second: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
});

/**
 * The audit log's public face, for anyone checking a proof (docs/audit-log.md): the key
 * that signs checkpoints, the newest checkpoint, and consistency proofs between two
 * published checkpoints. Entries themselves are never public; a citizen gets the proof
 * of their own entries from «Кто запрашивал мои данные».
 */
export function registerAuditRoutes(app: FastifyInstance, deps: { tree: AuditTree }): void {
  const text = 'text/plain; charset=utf-8';

  app.get('/audit/key', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(text).send(`${deps.tree.verifierKey}\n`),
  );

  app.get('/audit/checkpoint', { schema: { hide: true } }, async (_request, reply) => {
    const latest = await deps.tree.latestCheckpoint();
    if (!latest) {
      throw new NotFoundError(
        'The audit log has published no checkpoint yet.',
        'Журнал ещё не опубликовал ни одной отметки.',
      );
    }
    return reply.type(text).header('cache-control', 'no-cache').send(latest.note);
  });

  app.get(
    '/audit/consistency',
    { schema: { hide: true, querystring: Sizes } },
    async (request, reply) => {
      const { first, second } = request.query as { first: number; second: number };
      const [a, b] = await Promise.all([
        deps.tree.checkpointOfSize(first),
        deps.tree.checkpointOfSize(second),
      ]);
      if (!a || !b || first > second) {
        throw new NotFoundError(
          'No published checkpoints of these sizes (first ≤ second).',
          'Нет опубликованных отметок журнала таких размеров.',
        );
      }
      const proof = await deps.tree.consistencyProof(first, second);
      return reply.header('cache-control', 'public, max-age=31536000, immutable').send({
        first: { tree_size: a.size, root_hash: a.root.toString('base64'), checkpoint: a.note },
        second: { tree_size: b.size, root_hash: b.root.toString('base64'), checkpoint: b.note },
        consistency_path: proof.map((h) => h.toString('base64')),
      });
    },
  );
}
