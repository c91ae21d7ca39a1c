import type { FastifyInstance } from 'fastify';
import { h } from 'preact';
import { ForbiddenError } from '../../platform/http/errors.js';
import type { LinkView } from '../portal-access/portal-link.service.js';
import type { PortalLinkEventTable } from '../portal-access/portal-link.store.js';
import { OperatorHomePage, ProfilePage } from './customer-pages.js';
import type { SignedIn } from './signed-in.js';

export function registerCustomerRoutes(
  app: FastifyInstance,
  deps: {
    signedIn: SignedIn;
    portalData: (customerId: string) => Promise<LinkView | undefined>;
    /** What happened to the customer's portal links (J5), newest first. */
    portalHistory?: (customerId: string) => Promise<PortalLinkEventTable[]>;
    /** Link events not shown yet (taken: shown once). */
    portalNotices?: (customerId: string) => Promise<PortalLinkEventTable[]>;
  },
): void {
  const signedIn = deps.signedIn;

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const ctx = request.session.userId ? await signedIn(request, reply) : undefined;
    if (!ctx) return reply.redirect('/login', 303);
    return reply.redirect(ctx.isOperator ? '/operator' : '/profile', 303);
  });

  app.get('/profile', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    const link = await deps.portalData(ctx.customer.id);
    const notices = (await deps.portalNotices?.(ctx.customer.id)) ?? [];
    return reply.page(
      h(ProfilePage, {
        chrome: ctx.chrome,
        customer: ctx.customer,
        link,
        // A notice superseded by a newer link is not worth showing.
        notices: notices.filter((n) => !link || new Date(n.at).getTime() > link.linkedAt.getTime()),
        history: (await deps.portalHistory?.(ctx.customer.id)) ?? [],
      }),
    );
  });

  app.get('/operator', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    if (!ctx.isOperator) {
      throw new ForbiddenError(
        'The operator role is required.',
        'Этот раздел доступен только операторам банка.',
      );
    }
    return reply.page(h(OperatorHomePage, { chrome: ctx.chrome }));
  });
}
