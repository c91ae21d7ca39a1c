/**
 * A consent is an object of its own (PRODUCT.md): who, to which partner, of what type and
 * purpose, which data, until when, and its status with a history. It travels as the RAR
 * `authorization_details` entry of type `soglasie_consent` and mirrors ESIA `permissions`.
 */
export const CONSENT_DETAIL_TYPE = 'soglasie_consent';

export const CONSENT_TYPES = {
  CREDIT: 'Оформление кредита',
  CREDIT_CARD: 'Оформление кредитной карты',
  DEBIT_CARD: 'Оформление дебетовой карты',
  IDENTIFICATION: 'Идентификация клиента',
  REG_QUESTIONNAIRE: 'Заполнение анкеты клиента',
  BUSINESS_ACCOUNT: 'Открытие счёта для бизнеса',
} as const;

export type ConsentType = keyof typeof CONSENT_TYPES;

export const CONSENT_ACTIONS = {
  READ: 'Просмотр данных',
  READ_AND_STORE: 'Просмотр и хранение данных на срок согласия',
} as const;

export type ConsentAction = keyof typeof CONSENT_ACTIONS;

export type ConsentStatus = 'pending' | 'active' | 'paused' | 'revoked' | 'expired';

export const CONSENT_STATUS_LABELS: Record<ConsentStatus, string> = {
  pending: 'Ожидает подтверждения',
  active: 'Активно',
  paused: 'Приостановлено',
  revoked: 'Отключено',
  expired: 'Истёк срок',
};

/** What a partner asks for, as sent in `authorization_details`. */
export interface ConsentRequest {
  type: ConsentType;
  purposes: string[];
  actions: ConsentAction[];
  /** Data scopes the partner asks for; `optional` ones the citizen may untick. */
  scopes: string[];
  optionalScopes: string[];
  /** Validity in days from approval. */
  durationDays: number;
  /** A product application this consent serves, if any. */
  applicationRef?: string | undefined;
}

/** Who started it: the partner (J2, OAuth redirect) or the citizen on the portal (J1). */
export type ConsentOrigin = 'partner' | 'portal';

export interface Consent {
  id: string;
  citizenId: string;
  clientId: string;
  grantId: string | null;
  type: ConsentType;
  purposes: string[];
  actions: ConsentAction[];
  scopes: string[];
  applicationRef: string | null;
  origin: ConsentOrigin;
  /** J1: the citizen's identifier at the partner as they typed it, sealed (never clear). */
  clientRefSealed: string | null;
  status: ConsentStatus;
  grantedAt: Date | null;
  expiresAt: Date;
  createdAt: Date;
  updatedAt: Date;
}

export type ConsentEventType =
  | 'granted'
  | 'denied'
  | 'revoked'
  | 'expired'
  | 'paused'
  | 'resumed'
  | 'deletion_confirmed'
  /** J1: the partner matched its customer and took its token. */
  | 'connected'
  /** J1: the partner could not complete a portal-initiated connection (with a reason). */
  | 'connection_failed'
  /** The partner's deletion receipt did not arrive in time. */
  | 'deletion_overdue'
  /** Shown, not stored: when the partner received the news (its webhook delivery). */
  | 'acknowledged';

export interface ConsentEvent {
  consentId: string;
  type: ConsentEventType;
  at: Date;
  /** Who caused it: 'citizen', 'partner', 'system', 'security'. */
  actor: string;
  details: Record<string, unknown>;
}
