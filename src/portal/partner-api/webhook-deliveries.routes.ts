import type { FastifyInstance, FastifyRequest } from 'fastify';
import { callingPartner as partnerOf } from './calling-partner.js';
import { Type, type Static } from 'typebox';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import { ProblemSchema } from '../../platform/http/problem.js';
import {
  WebhookError,
  type WebhookMessageRecord,
  type WebhookMessageStatus,
  type Webhooks,
} from '../../platform/webhooks/index.js';
import type { PartnerService } from '../partners/partner.service.js';

/**
 * A partner's own webhook deliveries, on the mTLS listener: what was sent to its
 * endpoints and how each delivery went, and a replay of a message it lost or that died
 * after the retry schedule (docs/webhooks.md). The caller is the partner whose client
 * certificate is on the connection; another partner's messages do not exist for it.
 */
export interface WebhookDeliveryDeps {
  partners: Pick<PartnerService, 'byThumbprint'>;
  webhooks: Pick<Webhooks, 'listMessages' | 'getMessage' | 'replay'>;
  audit: Pick<AuditLog, 'append'>;
}

const DateTime = Type.String({ format: 'date-time' });
const Status = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivered'),
  Type.Literal('dead'),
]);

const WebhookMessage = Type.Object({
  id: Type.String({ description: 'The message id, sent as the webhook-id header.' }),
  endpoint_id: Type.String({ description: 'The endpoint POST /partner/webhooks returned.' }),
  type: Type.String({ description: 'The event type, e.g. consent.revoked.' }),
  status: Status,
  attempts: Type.Integer({ description: 'Delivery attempts with a known outcome.' }),
  created_at: DateTime,
  next_attempt_at: Type.Union([DateTime, Type.Null()], {
    description: 'When the next attempt is due (pending only).',
  }),
  delivered_at: Type.Union([DateTime, Type.Null()]),
  last_response_status: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The HTTP status of the last attempt; null when no response came.',
  }),
});
type WebhookMessageView = Static<typeof WebhookMessage>;

const ListQuery = Type.Object({
  status: Type.Optional(Status),
  type: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
});

const MessageParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });

function view(message: WebhookMessageRecord): WebhookMessageView {
  return {
    id: message.id,
    endpoint_id: message.endpointId,
    type: message.eventType,
    status: message.status,
    attempts: message.attempts,
    created_at: message.createdAt.toISOString(),
    next_attempt_at: message.status === 'pending' ? message.nextAttemptAt.toISOString() : null,
    delivered_at: message.deliveredAt?.toISOString() ?? null,
    last_response_status: message.lastStatus,
  };
}

export function registerWebhookDeliveryRoutes(
  app: FastifyInstance,
  deps: WebhookDeliveryDeps,
): void {
  const callingPartner = (request: FastifyRequest) => partnerOf(deps.partners, request);

  const notFound = (id: string) =>
    new WebhookError('ERR_WEBHOOK_NOT_FOUND', `No webhook message ${id} of this partner.`);

  app.get(
    '/partner/webhooks/messages',
    {
      schema: {
        summary: "The calling partner's webhook messages, newest first",
        querystring: ListQuery,
        response: {
          200: Type.Object({ messages: Type.Array(WebhookMessage) }),
          400: ProblemSchema,
          403: ProblemSchema,
        },
      },
    },
    async (request) => {
      const partner = await callingPartner(request);
      const query = request.query as {
        status?: WebhookMessageStatus;
        type?: string;
        limit?: number;
      };
      const messages = await deps.webhooks.listMessages(partner.client_id, {
        status: query.status,
        eventType: query.type,
        limit: query.limit ?? 100,
      });
      return { messages: messages.map(view) };
    },
  );

  app.post(
    '/partner/webhooks/messages/:id/replay',
    {
      schema: {
        summary: 'Deliver a dead or delivered message of the calling partner again',
        params: MessageParams,
        response: {
          202: WebhookMessage,
          403: ProblemSchema,
          404: ProblemSchema,
          409: ProblemSchema,
        },
      },
    },
    async (request, reply) => {
      const partner = await callingPartner(request);
      const { id } = request.params as { id: string };
      const before = await deps.webhooks.getMessage(partner.client_id, id);
      if (!before) throw notFound(id);
      // Owner-scoped and atomic: refused (404/409) unless it is this partner's, dead or
      // delivered, and its endpoint is still active.
      await deps.webhooks.replay(id, { owner: partner.client_id });
      await deps.audit.append({
        actor: `partner:${partner.client_id}`,
        action: 'webhook.replayed',
        subject: `webhook:${id}`,
        details: { event_type: before.eventType, previous_status: before.status },
      });
      const after = await deps.webhooks.getMessage(partner.client_id, id);
      if (!after) throw notFound(id);
      return reply.status(202).send(view(after));
    },
  );
}
