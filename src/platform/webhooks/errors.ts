import { AppError } from '../http/errors.js';

/**
 * Codes are the stable contract; messages are for humans and may change.
 * Callers branch on `code`, never on message text.
 */
export type WebhookErrorCode =
  /** The endpoint URL is malformed, not https, or points at a private address. */
  | 'ERR_WEBHOOK_URL'
  /** No webhook message with that id. */
  | 'ERR_WEBHOOK_NOT_FOUND'
  /** replay() of a message that is still pending. */
  | 'ERR_WEBHOOK_NOT_REPLAYABLE'
  /** replay() of a message whose endpoint has been disabled. */
  | 'ERR_WEBHOOK_ENDPOINT_DISABLED';

const STATUS: Record<WebhookErrorCode, number> = {
  ERR_WEBHOOK_URL: 400,
  ERR_WEBHOOK_NOT_FOUND: 404,
  ERR_WEBHOOK_NOT_REPLAYABLE: 409,
  ERR_WEBHOOK_ENDPOINT_DISABLED: 409,
};

const USER_MESSAGE: Record<WebhookErrorCode, string> = {
  ERR_WEBHOOK_URL: 'Адрес для уведомлений не подходит. Укажите публичный адрес https://.',
  ERR_WEBHOOK_NOT_FOUND: 'Такого уведомления нет.',
  ERR_WEBHOOK_NOT_REPLAYABLE: 'Уведомление ещё доставляется; повторить его пока нельзя.',
  ERR_WEBHOOK_ENDPOINT_DISABLED: 'Адрес для уведомлений отключён; повторить доставку нельзя.',
};

/** Thrown for bad input from outside (an endpoint URL, an operator's request). */
export class WebhookError extends AppError {
  declare readonly code: WebhookErrorCode;

  constructor(code: WebhookErrorCode, message: string) {
    super(code, STATUS[code], message, USER_MESSAGE[code]);
  }
}
