/**
 * Partly hidden identifiers for the consent screen: enough for the citizen to recognise
 * their own data, not enough for someone looking over their shoulder to copy it.
 */

const digitsOf = (value: string) => value.replace(/\D/g, '');

/** `633-218-420 63` → `***-***-*** 63`. */
export function maskSnils(snils: string): string {
  return `***-***-*** ${digitsOf(snils).slice(-2)}`;
}

/** `508654795515` → `********5515`. */
export function maskInn(inn: string): string {
  const digits = digitsOf(inn);
  const shown = digits.length > 4 ? digits.slice(-4) : '';
  return '*'.repeat(digits.length - shown.length) + shown;
}

/** Series `45 08`, number `123456` → `45 ** ****56`: region code and last two digits. */
export function maskPassport(series: string, number: string): string {
  const s = digitsOf(series);
  const n = digitsOf(number);
  return `${s.slice(0, 2)} ** ${'*'.repeat(Math.max(0, n.length - 2))}${n.slice(-2)}`;
}

/** `+79990000001` → `+7 999 ***-**-01`: operator code and last two digits. */
export function maskPhone(phone: string): string {
  const m = /^\+7(\d{3})\d{5}(\d{2})$/.exec(phone.replace(/[\s()-]/g, ''));
  if (m) return `+7 ${m[1]} ***-**-${m[2]}`;
  const digits = digitsOf(phone);
  return '*'.repeat(Math.max(0, digits.length - 2)) + digits.slice(-2);
}

/** `ivanov@example.test` → `iv***@example.test`. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at <= 0) return '***';
  const local = Array.from(email.slice(0, at));
  const kept = local.slice(0, local.length > 2 ? 2 : 1).join('');
  return `${kept}***${email.slice(at)}`;
}
