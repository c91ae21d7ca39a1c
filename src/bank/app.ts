import type { Kysely } from 'kysely';
import { createHttpApp } from '../platform/http/app-factory.js';
import { createSessionStore, type SessionTables } from '../platform/http/session.store.js';
import { createAttemptLimiter, type AttemptTables } from '../platform/limits/attempt-limiter.js';
import { registerLoginRoutes } from '../platform/login/login-routes.js';
import { registerDevOutbox } from '../platform/notify/dev-outbox.routes.js';
import { createOneTimeCodes, type OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceRuntime } from '../platform/runtime/service-runtime.js';
import { createCustomerService } from './customers/customer.service.js';
import { createCustomerStore, type CustomerTables } from './customers/customer.store.js';
import { registerCustomerRoutes } from './customers/customer.routes.js';
import type { BankDB } from './db.js';
import { createSignedIn } from './customers/signed-in.js';
import {
  createDataRequestStore,
  type DataRequestTables,
} from './data-rights/data-request.store.js';
import { registerDataRightsRoutes } from './data-rights/data-rights.routes.js';
import { createInFlightRegistry } from './portal-access/in-flight.js';
import { loadPortalClient } from './portal-access/portal-client.js';
import { registerPortalAccessRoutes } from './portal-access/portal-access.routes.js';
import { createPortalLinkService } from './portal-access/portal-link.service.js';
import { createPortalLinkStore, type PortalLinkTables } from './portal-access/portal-link.store.js';
import { createPortalEvents } from './portal-access/portal-events.js';
import { createPortalConnect } from './portal-access/portal-connect.js';
import { registerPortalEventRoutes } from './portal-access/portal-events.routes.js';
import {
  createPortalEventStore,
  type PortalEventTables,
} from './portal-access/portal-events.store.js';

export const BANK_SITE = 'Банк · интернет-банк';

/** Builds the bank's web app on a runtime; does not listen. */
export async function buildBankApp(runtime: ServiceRuntime<BankDB>) {
  const { config, clock, ids, db } = runtime;
  const look = { site: BANK_SITE, theme: 'bank' as const, demo: config.demo };

  const portal = loadPortalClient(config.bank.partnerDir, {
    allowHttpIssuer: config.mode !== 'production',
  });
  const app = await createHttpApp({
    service: 'bank',
    look,
    logger: runtime.logger,
    clock,
    sessions: createSessionStore(db as unknown as Kysely<SessionTables>),
    publicUrl: config.bank.publicUrl,
    secureCookies: config.mode === 'production',
    trustedProxies: config.trustedProxies,
    health: () => runtime.database.ping(),
    // Linking posts a form whose answer redirects to the portal.
    formActionOrigins: [new URL(config.bank.portalIssuer).origin],
  });
  app.addHook('onClose', async () => portal?.close());

  const customers = createCustomerService({
    store: createCustomerStore(db as unknown as Kysely<CustomerTables>),
    sealer: runtime.sealer,
    clock,
    ids,
  });

  const limiter = createAttemptLimiter(db as unknown as Kysely<AttemptTables>, clock);
  registerLoginRoutes(app, {
    look,
    clock,
    codes: createOneTimeCodes(db as unknown as Kysely<OneTimeCodeTables>, clock, ids),
    limiter,
    notifier: runtime.notifier,
    findAccount: async (identifier) => {
      const id = await customers.findIdByUsername(identifier);
      return id ? customers.loginAccount(id) : undefined;
    },
    loadAccount: (id) => customers.loginAccount(id),
    // The bank confirms logins by SMS only; there is no TOTP step to record.
    useTotpStep: async () => false,
    identifierLabel: 'Логин',
    smsSender: 'Банк',
    homePath: '/',
    onEvent: (event) => {
      runtime.logger.info(
        { event: event.type, account: 'accountId' in event ? event.accountId : undefined },
        'login event',
      );
    },
  });

  const linkStore = createPortalLinkStore(db as unknown as Kysely<PortalLinkTables>);
  const links = createPortalLinkService({
    portal,
    store: linkStore,
    keyring: runtime.keyring,
    clock,
    ids,
    inFlight: createInFlightRegistry(),
    // The bank reaches its customers by SMS (as for its login codes).
    notify: async (customerId, message) => {
      const customer = await customers.get(customerId);
      if (!customer) return;
      await runtime.notifier.send({ to: customer.personal.phone, channel: 'sms', ...message });
    },
    logger: runtime.logger,
  });
  const signedIn = createSignedIn(customers, look);
  registerCustomerRoutes(app, {
    signedIn,
    portalData: (id) => links.view(id),
    portalHistory: (id) => links.history(id),
    portalNotices: (id) => links.takeNotices(id),
  });
  registerPortalAccessRoutes(app, {
    signedIn,
    customers,
    links,
    limiter,
    publicUrl: config.bank.publicUrl,
  });
  const events = createPortalEvents({
    portal,
    store: createPortalEventStore(db as unknown as Kysely<PortalEventTables>),
    sealer: runtime.sealer,
    clock,
    logger: runtime.logger,
    receiverUrl: `${config.bank.publicUrl}/webhooks/portal`,
    endConsent: links.endConsent,
    setPaused: links.setPaused,
    connect: createPortalConnect({ portal, customers, links, logger: runtime.logger }).onGranted,
  });
  await registerPortalEventRoutes(app, events);
  registerDataRightsRoutes(app, {
    signedIn,
    links,
    requests: createDataRequestStore(db as unknown as Kysely<DataRequestTables>),
    sealer: runtime.sealer,
    clock,
    ids,
  });
  let stopEvents = () => {};
  app.addHook('onReady', async () => {
    stopEvents = events.start();
  });
  app.addHook('onClose', async () => stopEvents());
  if (runtime.outbox) registerDevOutbox(app, runtime.outbox);

  return Object.assign(app, { customers, links, events });
}

export type BankApp = Awaited<ReturnType<typeof buildBankApp>>;
