import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type Provider from 'oidc-provider';
import { h } from 'preact';
import type { LayoutProps } from '../../platform/views/layout.js';
import { isKnownScope, scopeLabel } from '../data-api/scope-catalog.js';
import { AccessManagementPage, type ConnectionView } from './access-pages.js';
import type { Consent } from './consent.js';
import type { ConsentService } from './consent.service.js';

/** «Управление доступом»: the citizen's connected partners, one row each, newest consent first. */
export function registerAccessRoutes(
  app: FastifyInstance,
  deps: {
    consents: ConsentService;
    provider: Provider;
    signedIn: (
      request: FastifyRequest,
      reply: FastifyReply,
    ) => Promise<
      { citizenId: string; chrome: Omit<LayoutProps, 'title' | 'children'> } | undefined
    >;
  },
): void {
  app.get('/access', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return reply;
    const byClient = new Map<string, Consent[]>();
    for (const consent of await deps.consents.listForCitizen(ctx.citizenId)) {
      byClient.set(consent.clientId, [...(byClient.get(consent.clientId) ?? []), consent]);
    }
    const connections: ConnectionView[] = [];
    for (const [clientId, consents] of byClient) {
      const [latest, ...earlier] = consents;
      const client = await deps.provider.Client.find(clientId);
      connections.push({
        clientId,
        partnerName: client?.clientName ?? clientId,
        consent: latest!,
        scopeLabels: latest!.scopes.map((s) => (isKnownScope(s) ? scopeLabel(s) : s)),
        events: await deps.consents.events(latest!.id),
        earlier,
      });
    }
    return reply.page(h(AccessManagementPage, { chrome: ctx.chrome, connections }));
  });
}
