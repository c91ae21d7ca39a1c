/**
 * What a person may type into the login field: a phone, an e-mail, a SNILS, or a staff
 * username. Normalised so that «8 (999) 000-00-01» and «+79990000001» are the same.
 */
export function normalizePhone(raw: string): string | undefined {
  const digits = raw.replace(/[\s()\-+]/g, '');
  if (!/^\d+$/.test(digits)) return undefined;
  if (digits.length === 10) return `+7${digits}`;
  if (digits.length === 11 && (digits.startsWith('7') || digits.startsWith('8'))) {
    return `+7${digits.slice(1)}`;
  }
  return undefined;
}

export function normalizeEmail(raw: string): string | undefined {
  const email = raw.trim().toLowerCase();
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) ? email : undefined;
}

export function normalizeSnilsDigits(raw: string): string | undefined {
  const digits = raw.replace(/[\s-]/g, '');
  return /^\d{11}$/.test(digits) ? digits : undefined;
}

export type LoginIdentifier =
  | { kind: 'email'; value: string }
  | {
      kind: 'phone-or-snils';
      phone: string | undefined;
      snils: string | undefined;
      phoneFirst: boolean;
    }
  | { kind: 'username'; value: string };

export function parseLoginIdentifier(raw: string): LoginIdentifier | undefined {
  const text = raw.trim();
  if (!text) return undefined;
  if (text.includes('@')) {
    const email = normalizeEmail(text);
    return email ? { kind: 'email', value: email } : undefined;
  }
  if (/^[+\d\s()-]+$/.test(text)) {
    const phone = normalizePhone(text);
    const snils = text.startsWith('+') ? undefined : normalizeSnilsDigits(text);
    if (!phone && !snils) return undefined;
    // «123-456-789 01» looks like a SNILS; «+7…» and «8 (…)» look like phones.
    const phoneFirst =
      text.startsWith('+') || text.includes('(') || !/^\d{3}-\d{3}-\d{3}/.test(text);
    return { kind: 'phone-or-snils', phone, snils, phoneFirst };
  }
  if (/^[a-z][a-z0-9._-]{1,63}$/i.test(text))
    return { kind: 'username', value: text.toLowerCase() };
  return undefined;
}
