import type { Kysely } from 'kysely';
import { createHttpApp } from '../platform/http/app-factory.js';
import { createSessionStore, type SessionTables } from '../platform/http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../platform/limits/attempt-limiter.js';
import { registerLoginRoutes, type LoginEvent } from '../platform/login/login-routes.js';
import { registerDevOutbox } from '../platform/notify/dev-outbox.routes.js';
import { createOneTimeCodes, type OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceRuntime } from '../platform/runtime/service-runtime.js';
import { createCitizenService } from './citizens/citizen.service.js';
import { createCitizenStore, type CitizenTables } from './citizens/citizen.store.js';
import { registerCitizenRoutes } from './citizens/citizen.routes.js';
import type { PortalDB } from './db.js';

export const PORTAL_SITE = 'Госуслуги · песочница';

/** Builds the portal's web app on a runtime; does not listen. */
export async function buildPortalApp(runtime: ServiceRuntime<PortalDB>) {
  const { config, clock, ids, db } = runtime;
  const look = { site: PORTAL_SITE, theme: 'portal' as const, demo: config.demo };
  const secure = config.mode === 'production';

  const app = await createHttpApp({
    service: 'portal',
    look,
    logger: runtime.logger,
    clock,
    sessions: createSessionStore(db as unknown as Kysely<SessionTables>),
    secureCookies: secure,
    trustedProxies: config.trustedProxies,
    health: () => runtime.database.ping(),
  });

  const citizens = createCitizenService({
    store: createCitizenStore(db as unknown as Kysely<CitizenTables>),
    sealer: runtime.sealer,
    lookupKey: runtime.lookupKey,
    clock,
    ids,
  });

  registerLoginRoutes(app, {
    look,
    clock,
    codes: createOneTimeCodes(db as unknown as Kysely<OneTimeCodeTables>, clock, ids),
    limiter: createAttemptLimiter(db as unknown as Kysely<AttemptTables>, clock),
    notifier: runtime.notifier,
    findAccount: async (identifier) => {
      const id = await citizens.findIdByIdentifier(identifier);
      return id ? citizens.loginAccount(id) : undefined;
    },
    loadAccount: (id) => citizens.loginAccount(id),
    useTotpStep: (id, step) => citizens.useTotpStep(id, step),
    identifierLabel: 'Телефон, почта или СНИЛС',
    identifierHint: 'Например, +7 999 000-00-01',
    smsSender: 'Госуслуги',
    homePath: '/profile',
    onEvent: (event: LoginEvent) => {
      // Ids only: who tried is personal data we do not write to logs.
      runtime.logger.info(
        { event: event.type, account: 'accountId' in event ? event.accountId : undefined },
        'login event',
      );
    },
  });

  registerCitizenRoutes(app, { citizens, sealer: runtime.sealer, look });
  if (runtime.outbox) registerDevOutbox(app, runtime.outbox);

  return Object.assign(app, { citizens });
}

export type PortalApp = Awaited<ReturnType<typeof buildPortalApp>>;
