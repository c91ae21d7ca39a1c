/** How the data API and the consent screen write dates, money and counts. */

/** `1985-04-12` → `12.04.1985`, the date format of the ESIA REST API. */
export function esiaDate(isoDate: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(isoDate);
  if (!m) throw new TypeError('esiaDate needs YYYY-MM-DD');
  return `${m[3]}.${m[2]}.${m[1]}`;
}

const NBSP = '\u00a0';

/** 2526821n → `25 268,21 ₽` (no-break spaces, as Russian typography wants). */
export function formatRubles(kopecks: bigint): string {
  const negative = kopecks < 0n;
  const abs = negative ? -kopecks : kopecks;
  const rubles = (abs / 100n).toString().replace(/\B(?=(\d{3})+$)/g, NBSP);
  const rest = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '−' : ''}${rubles},${rest}${NBSP}₽`;
}

/** Russian plural: plural(3, ['заявление', 'заявления', 'заявлений']) → 'заявления'. */
export function plural(n: number, forms: readonly [one: string, few: string, many: string]) {
  const mod10 = n % 10;
  const mod100 = n % 100;
  if (mod10 === 1 && mod100 !== 11) return forms[0];
  if (mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14)) return forms[1];
  return forms[2];
}
