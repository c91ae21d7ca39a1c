/**
 * Outbound webhooks (Standard Webhooks): endpoints with sealed secrets, a transactional
 * outbox, workers that any number of instances can run. See webhook.service.ts.
 */
export { WebhookError, type WebhookErrorCode } from './errors.js';
export { MAX_URL_LENGTH, checkEndpointUrl, type UrlPolicy } from './url-policy.js';
export {
  createWebhookStore,
  createWebhookTables,
  type ClaimedMessage,
  type JsonValue,
  type MessageOutcome,
  type WebhookEndpointTable,
  type WebhookMessageRecord,
  type WebhookMessageStatus,
  type WebhookMessageTable,
  type WebhookStore,
  type WebhookTables,
} from './webhook.store.js';
export {
  CLAIM_LEASE_MS,
  DEFAULT_BATCH,
  DELIVERY_TIMEOUT_MS,
  MAX_BATCH,
  RETRY_SCHEDULE_MS,
  SECRET_BYTES,
  createWebhooks,
  type DeliveryCounts,
  type WebhookDeps,
  type WebhookMessageFilter,
  type WebhookWorkerLogger,
  type Webhooks,
} from './webhook.service.js';
