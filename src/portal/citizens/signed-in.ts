import type { FastifyReply, FastifyRequest } from 'fastify';
import { requireLogin } from '../../platform/login/login-routes.js';
import type { LayoutProps } from '../../platform/views/layout.js';
import { fullName } from './citizen.js';
import type { CitizenService } from './citizen.service.js';

/**
 * Loads the logged-in citizen (their data decrypted for them alone) with the page chrome;
 * pages call this first. Sends the browser to /login and returns undefined otherwise.
 */
export function createSignedIn(
  citizens: CitizenService,
  look: Pick<LayoutProps, 'site' | 'theme' | 'demo'>,
) {
  return async function signedIn(request: FastifyRequest, reply: FastifyReply) {
    const id = requireLogin(request, reply);
    if (!id) return undefined;
    const found = await citizens.personalData(id);
    if (!found) {
      await request.session.destroy();
      void reply.redirect('/login', 303);
      return undefined;
    }
    const csrf = await request.session.csrfToken();
    const roles = found.citizen.roles;
    const nav = [
      { href: '/profile', label: 'Личные данные' },
      { href: '/access', label: 'Управление доступом' },
      { href: '/security', label: 'Безопасность' },
      ...(roles.includes('security')
        ? [{ href: '/security-center', label: 'Центр безопасности' }]
        : []),
      ...(roles.includes('admin') ? [{ href: '/admin', label: 'Администрирование' }] : []),
    ];
    const chrome = {
      ...look,
      nav,
      user: { name: fullName(found.personal), csrf, logoutAction: '/logout' },
    };
    return { ...found, citizenId: id, csrf, chrome };
  };
}

export type CitizenSignedIn = ReturnType<typeof createSignedIn>;
