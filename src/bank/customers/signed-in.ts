import type { FastifyReply, FastifyRequest } from 'fastify';
import { requireLogin } from '../../platform/login/login-routes.js';
import type { LayoutProps } from '../../platform/views/layout.js';
import type { CustomerService } from './customer.service.js';

const CUSTOMER_NAV = [
  { href: '/profile', label: 'Профиль' },
  { href: '/security', label: 'Безопасность' },
  { href: '/gosuslugi', label: 'Госуслуги' },
  { href: '/profile/data', label: 'Мои данные' },
];
const OPERATOR_NAV = [{ href: '/operator', label: 'Заявки и обращения' }];

/**
 * Loads the logged-in customer with the page chrome; pages call this first. Sends the
 * browser to /login (and returns undefined) when nobody is logged in.
 */
export function createSignedIn(
  customers: CustomerService,
  look: Pick<LayoutProps, 'site' | 'theme' | 'demo'>,
) {
  return async function signedIn(request: FastifyRequest, reply: FastifyReply) {
    const id = requireLogin(request, reply);
    if (!id) return undefined;
    const customer = await customers.get(id);
    if (!customer) {
      await request.session.destroy();
      void reply.redirect('/login', 303);
      return undefined;
    }
    const isOperator = customer.roles.includes('operator');
    const p = customer.personal;
    const csrf = await request.session.csrfToken();
    const chrome = {
      ...look,
      nav: isOperator ? OPERATOR_NAV : CUSTOMER_NAV,
      user: { name: `${p.firstName} ${p.lastName}`, csrf, logoutAction: '/logout' },
    };
    return { customer, chrome, csrf, isOperator };
  };
}

export type SignedIn = ReturnType<typeof createSignedIn>;
