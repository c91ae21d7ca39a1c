import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { Type } from 'typebox';
import { ForbiddenError } from '../../platform/http/errors.js';
import type { CitizenSignedIn } from '../citizens/signed-in.js';
import { IpBlocksPage, type IpBlockView } from './blocks-pages.js';
import type { IpBlockService } from './ip-block.service.js';

const BlockParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

/**
 * The security center's IP blocks (J11): the analyst sees the blocks in force and lifts
 * one («Снять блокировку», a CSRF-protected POST, audited by the service).
 */
export function registerBlockRoutes(
  app: FastifyInstance,
  deps: {
    blocks: IpBlockService;
    signedIn: CitizenSignedIn;
    /** The partner's name as citizens see it, for a block its requests caused. */
    partnerName: (clientId: string) => Promise<string>;
  },
): void {
  /** The signed-in security analyst, or a 403 for anyone else. */
  const analyst = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return undefined;
    if (!ctx.citizen.roles.includes('security')) {
      throw new ForbiddenError(
        'The security role is required.',
        'Этот раздел доступен только сотрудникам с соответствующей ролью.',
      );
    }
    return ctx;
  };

  const page = async (
    request: FastifyRequest,
    reply: FastifyReply,
    notice?: { kind: 'success' | 'info'; text: string },
  ) => {
    const ctx = await analyst(request, reply);
    if (!ctx) return reply;
    const blocks: IpBlockView[] = [];
    for (const row of await deps.blocks.listActive()) {
      blocks.push({
        id: row.id,
        ip: row.ip,
        reason: row.reason,
        partner: row.client_id ? await deps.partnerName(row.client_id) : undefined,
        since: new Date(row.blocked_at),
        until: new Date(row.blocked_until),
      });
    }
    return reply.page(h(IpBlocksPage, { chrome: ctx.chrome, csrf: ctx.csrf, blocks, notice }));
  };

  app.get('/security-center/blocks', { schema: { hide: true } }, (request, reply) =>
    page(request, reply),
  );

  app.post(
    '/security-center/blocks/:id/lift',
    {
      schema: {
        hide: true,
        params: BlockParams,
        body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }),
      },
    },
    async (request, reply) => {
      const ctx = await analyst(request, reply);
      if (!ctx) return reply;
      const { id } = request.params as { id: string };
      const lifted = await deps.blocks.lift(id, ctx.citizenId);
      return page(
        request,
        reply,
        lifted
          ? { kind: 'success', text: `Блокировка адреса ${lifted.ip} снята.` }
          : { kind: 'info', text: 'Эта блокировка уже снята или истекла.' },
      );
    },
  );
}
