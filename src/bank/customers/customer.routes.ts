import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { ForbiddenError } from '../../platform/http/errors.js';
import { requireLogin } from '../../platform/login/login-routes.js';
import type { LayoutProps } from '../../platform/views/layout.js';
import { OperatorHomePage, ProfilePage } from './customer-pages.js';
import type { CustomerService } from './customer.service.js';

export function registerCustomerRoutes(
  app: FastifyInstance,
  deps: { customers: CustomerService; look: Pick<LayoutProps, 'site' | 'theme' | 'demo'> },
): void {
  async function signedIn(request: FastifyRequest, reply: FastifyReply) {
    const id = requireLogin(request, reply);
    if (!id) return undefined;
    const customer = await deps.customers.get(id);
    if (!customer) {
      await request.session.destroy();
      void reply.redirect('/login', 303);
      return undefined;
    }
    const isOperator = customer.roles.includes('operator');
    const nav = isOperator
      ? [{ href: '/operator', label: 'Заявки и обращения' }]
      : [{ href: '/profile', label: 'Профиль' }];
    const p = customer.personal;
    const chrome = {
      ...deps.look,
      nav,
      user: {
        name: `${p.firstName} ${p.lastName}`,
        csrf: await request.session.csrfToken(),
        logoutAction: '/logout',
      },
    };
    return { customer, chrome, isOperator };
  }

  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const ctx = request.session.userId ? await signedIn(request, reply) : undefined;
    if (!ctx) return reply.redirect('/login', 303);
    return reply.redirect(ctx.isOperator ? '/operator' : '/profile', 303);
  });

  app.get('/profile', { schema: { hide: true } }, async (request, reply) => {
    const ctx = await signedIn(request, reply);
    if (!ctx) return reply;
    return reply.page(h(ProfilePage, { chrome: ctx.chrome, customer: ctx.customer }));
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
