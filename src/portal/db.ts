import type { SessionTables } from '../platform/http/session.store.js';
import type { AttemptTables } from '../platform/limits/attempt-limiter.js';
import type { OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceKeyTables } from '../platform/runtime/service-keys.js';
import type { CitizenTables } from './citizens/citizen.store.js';

export type PortalDB = SessionTables &
  AttemptTables &
  OneTimeCodeTables &
  ServiceKeyTables &
  CitizenTables;
