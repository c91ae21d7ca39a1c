import type { SessionTables } from '../platform/http/session.store.js';
import type { AttemptTables } from '../platform/limits/attempt-limiter.js';
import type { OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceKeyTables } from '../platform/runtime/service-keys.js';
import type { CustomerTables } from './customers/customer.store.js';
import type { PortalLinkTables } from './portal-access/portal-link.store.js';
import type { PortalEventTables } from './portal-access/portal-events.store.js';
import type { DataRequestTables } from './data-rights/data-request.store.js';

export type BankDB = SessionTables &
  AttemptTables &
  OneTimeCodeTables &
  ServiceKeyTables &
  CustomerTables &
  PortalLinkTables &
  PortalEventTables &
  DataRequestTables;
