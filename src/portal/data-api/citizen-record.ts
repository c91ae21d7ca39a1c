/**
 * What the portal knows about a citizen besides their personal data: applications for
 * state services ("заявления") and benefit payments registered in ЕГИССО. Both are
 * sealed at rest (citizen-records.store.ts) and shared only under the `orders` and
 * `payments_egisso` scopes.
 */

export const ORDER_STATUSES = ['SUBMITTED', 'IN_PROGRESS', 'DONE', 'REJECTED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** The status as the citizen reads it on the portal. */
export const ORDER_STATUS_TEXT: Readonly<Record<OrderStatus, string>> = {
  SUBMITTED: 'Заявление отправлено',
  IN_PROGRESS: 'В обработке',
  DONE: 'Услуга оказана',
  REJECTED: 'Отказано',
};

export interface CitizenOrder {
  /** `2026-0001234567`: the year it was filed and ten digits. */
  number: string;
  /** Russian, e.g. «Регистрация по месту жительства». */
  serviceName: string;
  status: OrderStatus;
  /** Russian, ORDER_STATUS_TEXT[status] unless the department said more. */
  statusText: string;
  /** ISO 8601 instant. */
  submittedAt: string;
  /** ISO 8601 instant. */
  updatedAt: string;
  /** Number of the document issued when the service was provided (status DONE). */
  certificateNumber?: string | undefined;
}

export const PAYMENT_KINDS = ['BENEFIT', 'SUBSIDY', 'COMPENSATION'] as const;
export type PaymentKind = (typeof PAYMENT_KINDS)[number];

export interface CitizenPayment {
  /** Identifier of the payment fact in ЕГИССО. */
  id: string;
  kind: PaymentKind;
  /** Russian, e.g. «Пособие по временной нетрудоспособности». */
  name: string;
  /** Decimal rubles with two digits after the point: `12345.67`. */
  amount: string;
  currency: 'RUB';
  /** YYYY-MM-DD */
  paidAt: string;
  /** Russian, e.g. «Социальный фонд России». */
  payer: string;
}

/** What the consent preview and the data API read: the citizen's records, decrypted. */
export interface CitizenRecords {
  orders: readonly CitizenOrder[];
  payments: readonly CitizenPayment[];
}

const ORDER_NUMBER = /^\d{4}-\d{10}$/;
const AMOUNT = /^(0|[1-9]\d{0,11})\.\d{2}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function isIsoInstant(value: unknown): boolean {
  return (
    typeof value === 'string' &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}

function isCalendarDate(value: unknown): boolean {
  if (typeof value !== 'string' || !DATE.test(value)) return false;
  const date = new Date(`${value}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === value;
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/** Caller mistakes are TypeErrors: these records come from our own code, not from users. */
function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new TypeError(`invalid citizen record: ${what}`);
}

export function assertCitizenOrder(order: CitizenOrder): void {
  check(typeof order === 'object' && order !== null, 'order must be an object');
  check(typeof order.number === 'string' && ORDER_NUMBER.test(order.number), 'order number');
  check(isText(order.serviceName), 'serviceName');
  check((ORDER_STATUSES as readonly string[]).includes(order.status), 'status');
  check(isText(order.statusText), 'statusText');
  check(isIsoInstant(order.submittedAt), 'submittedAt must be an ISO instant');
  check(isIsoInstant(order.updatedAt), 'updatedAt must be an ISO instant');
  check(
    order.certificateNumber === undefined || isText(order.certificateNumber),
    'certificateNumber',
  );
}

export function assertCitizenPayment(payment: CitizenPayment): void {
  check(typeof payment === 'object' && payment !== null, 'payment must be an object');
  check(isText(payment.id), 'id');
  check((PAYMENT_KINDS as readonly string[]).includes(payment.kind), 'kind');
  check(isText(payment.name), 'name');
  check(typeof payment.amount === 'string' && AMOUNT.test(payment.amount), 'amount');
  check(payment.currency === 'RUB', 'currency');
  check(isCalendarDate(payment.paidAt), 'paidAt must be YYYY-MM-DD');
  check(isText(payment.payer), 'payer');
}

/** Kopecks as a bigint, so that sums stay exact. */
export function amountToKopecks(amount: string): bigint {
  check(AMOUNT.test(amount), 'amount');
  const [rubles, kopecks] = amount.split('.') as [string, string];
  return BigInt(rubles) * 100n + BigInt(kopecks);
}
