import type { SessionTables } from '../platform/http/session.store.js';
import type { AttemptTables } from '../platform/limits/attempt-limiter.js';
import type { OneTimeCodeTables } from '../platform/otp/one-time-codes.js';
import type { ServiceKeyTables } from '../platform/runtime/service-keys.js';
import type { AuditTables } from '../platform/audit/audit-log.js';
import type { WebhookTables } from '../platform/webhooks/index.js';
import type { CitizenTables } from './citizens/citizen.store.js';
import type { ConsentTables } from './consents/consent.store.js';
import type { CitizenRecordTables } from './data-api/citizen-records.store.js';
import type { OidcTables } from './oidc/oidc.store.js';
import type { PartnerTables } from './partners/partner.store.js';
import type { RevocationTables } from './partners/certificate-revocation.store.js';
import type { DpopTables } from './partner-api/dpop.js';
import type { RateLimitCounterTables } from '../platform/limits/window-counters.js';
import type { IpBlockTables } from './security/ip-block.store.js';
import type { SecurityTables } from './security/anomaly.store.js';

export type PortalDB = SessionTables &
  AttemptTables &
  OneTimeCodeTables &
  ServiceKeyTables &
  CitizenTables &
  CitizenRecordTables &
  OidcTables &
  PartnerTables &
  RevocationTables &
  ConsentTables &
  AuditTables &
  DpopTables &
  WebhookTables &
  RateLimitCounterTables &
  IpBlockTables &
  SecurityTables;
