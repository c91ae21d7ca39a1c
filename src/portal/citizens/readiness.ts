import type { Citizen, CitizenPersonalData } from './citizen.js';

/**
 * J9: before a citizen connects a partner, the portal checks the account and says what
 * to fix. A partner receiving unconfirmed contacts or stale data would act on wrong facts.
 */
export interface ReadinessProblem {
  code:
    | 'DATA_STALE'
    | 'PHONE_UNCONFIRMED'
    | 'EMAIL_MISSING'
    | 'EMAIL_UNCONFIRMED'
    | 'BLOCKED'
    | 'NO_SECOND_FACTOR';
  text: string;
  fix: { href: string; label: string };
}

export const DATA_FRESHNESS_DAYS = 3 * 365;

export function checkReadiness(
  citizen: Citizen,
  personal: CitizenPersonalData,
  now: Date,
): ReadinessProblem[] {
  const problems: ReadinessProblem[] = [];
  const profile = { href: '/profile', label: 'Перейти в «Личные данные»' };
  if (citizen.blocked) {
    problems.push({
      code: 'BLOCKED',
      text: 'Учётная запись заблокирована.',
      fix: { href: '/', label: 'Обратиться в службу поддержки' },
    });
  }
  const ageDays = (now.getTime() - citizen.personalUpdatedAt.getTime()) / 86_400_000;
  if (ageDays > DATA_FRESHNESS_DAYS) {
    problems.push({
      code: 'DATA_STALE',
      text: 'Личные данные не обновлялись более трёх лет. Проверьте и обновите их.',
      fix: profile,
    });
  }
  if (!citizen.phoneConfirmed) {
    problems.push({
      code: 'PHONE_UNCONFIRMED',
      text: 'Мобильный телефон не подтверждён.',
      fix: profile,
    });
  }
  if (!personal.email) {
    problems.push({ code: 'EMAIL_MISSING', text: 'Не указана электронная почта.', fix: profile });
  } else if (!citizen.emailConfirmed) {
    problems.push({
      code: 'EMAIL_UNCONFIRMED',
      text: 'Электронная почта не подтверждена.',
      fix: profile,
    });
  }
  const secondFactor = citizen.secondFactor === 'totp' || citizen.phoneConfirmed;
  if (!secondFactor) {
    problems.push({
      code: 'NO_SECOND_FACTOR',
      text: 'Не включён вход с подтверждением (код по SMS или из приложения).',
      fix: { href: '/security', label: 'Перейти в «Безопасность»' },
    });
  }
  return problems;
}
