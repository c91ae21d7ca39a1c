import type { AnomalyConfig, AnomalyRuleId, RuleSettings } from './anomaly-config.js';
import { countryName } from './geo.js';

/**
 * The anomaly rules, each a pure function of what was observed: it returns a hit that
 * explains itself (a Russian sentence for people, a stable English code and the numbers
 * behind it for machines), or nothing. What a hit then does is the rule's configured
 * actions (anomaly.service.ts); these functions only decide.
 */
export type Severity = 'low' | 'medium' | 'high';

export interface AnomalyHit {
  rule: AnomalyRuleId;
  /** Stable, upper case, for partners and filters: REQUEST_FREQUENCY, … */
  code: string;
  severity: Severity;
  /** For the security center and the citizen: why this is suspicious, in Russian. */
  explanation: string;
  /** For partners (`security.alert`): the same in one English sentence. */
  summary: string;
  /** The facts behind the decision; no personal data. */
  details: Record<string, string | number | boolean | null>;
}

const codeOf = (rule: AnomalyRuleId) => rule.toUpperCase();

/**
 * Reads in the last 60 s, estimated from two fixed one-minute windows (the sliding window
 * counter): the previous window's count weighted by how much of it the last 60 s still
 * cover, plus the current window's count.
 */
export function slidingReads(
  previousWindow: number,
  currentWindow: number,
  msIntoWindow: number,
  windowMs = 60_000,
): number {
  const overlap = Math.max(0, Math.min(1, 1 - msIntoWindow / windowMs));
  return previousWindow * overlap + currentWindow;
}

/** More data API reads under one consent in the last minute than the threshold. */
export function requestFrequencyRule(
  settings: AnomalyConfig['rules']['request_frequency'],
  input: { reads: number; partnerName: string },
): AnomalyHit | undefined {
  if (!settings.enabled || input.reads <= settings.maxReadsPerMinute) return undefined;
  const reads = Math.ceil(input.reads);
  return {
    rule: 'request_frequency',
    code: codeOf('request_frequency'),
    severity: 'high',
    explanation: `Сервис «${input.partnerName}» запросил данные по одному согласию ${reads} раз за минуту (порог — ${settings.maxReadsPerMinute}).`,
    summary: `${reads} data API reads under one consent within 60 seconds, above the threshold of ${settings.maxReadsPerMinute}.`,
    details: { reads, threshold: settings.maxReadsPerMinute, window_seconds: 60 },
  };
}

/**
 * Two logins of one citizen from different countries closer in time than anyone could
 * travel (the window). Logins from addresses without a country (private, loopback,
 * unknown) neither trigger nor count as the previous login.
 */
export function impossibleTravelRule(
  settings: AnomalyConfig['rules']['impossible_travel'],
  input: {
    country: string | undefined;
    at: Date;
    previous: { country: string; at: Date } | undefined;
  },
): AnomalyHit | undefined {
  const { previous, country } = input;
  if (!settings.enabled || !country || !previous || previous.country === country) return undefined;
  const minutes = Math.floor((input.at.getTime() - previous.at.getTime()) / 60_000);
  if (minutes < 0 || minutes >= settings.windowMinutes) return undefined;
  return {
    rule: 'impossible_travel',
    code: codeOf('impossible_travel'),
    severity: 'high',
    explanation: `Вход из страны «${countryName(country)}» (${country}) через ${minutes} мин после входа из страны «${countryName(previous.country)}» (${previous.country}); так быстро переместиться нельзя (окно — ${settings.windowMinutes} мин).`,
    summary: `Login from ${country} ${minutes} minutes after a login from ${previous.country}, within the ${settings.windowMinutes}-minute window.`,
    details: {
      country,
      previous_country: previous.country,
      minutes_between: minutes,
      window_minutes: settings.windowMinutes,
    },
  };
}

/**
 * A login from a device the citizen has never logged in from. The very first login of
 * an account has nothing to compare with and is not a hit.
 */
export function newDeviceRule(
  settings: RuleSettings,
  input: { deviceHash: string | undefined; earlierLogins: number; deviceSeenBefore: boolean },
): AnomalyHit | undefined {
  if (!settings.enabled || !input.deviceHash || input.earlierLogins === 0) return undefined;
  if (input.deviceSeenBefore) return undefined;
  return {
    rule: 'new_device',
    code: codeOf('new_device'),
    severity: 'low',
    explanation: `Вход с нового устройства: с него этот пользователь раньше не входил (прежних входов: ${input.earlierLogins}).`,
    summary: 'Login from a device never seen for this account.',
    details: { earlier_logins: input.earlierLogins },
  };
}

/** A partner's access token presented over another client's certificate (RFC 8705). */
export function tokenCertificateMismatchRule(
  settings: RuleSettings,
  input: { tokenPartner: string; presenter: string | undefined },
): AnomalyHit | undefined {
  if (!settings.enabled) return undefined;
  return {
    rule: 'token_certificate_mismatch',
    code: codeOf('token_certificate_mismatch'),
    severity: 'high',
    explanation: `Токен доступа сервиса «${input.tokenPartner}» предъявлен с сертификатом ${input.presenter ? `другого клиента («${input.presenter}»)` : 'незарегистрированного клиента'}: токен мог быть похищен.`,
    summary: `An access token issued to this partner was presented with ${input.presenter ? "another partner's" : 'an unknown'} client certificate.`,
    details: { presenter_known: input.presenter !== undefined },
  };
}

/** A read of data the consent does not cover. */
export function scopeBeyondConsentRule(
  settings: RuleSettings,
  input: { partnerName: string; resource: string; scope: string; scopeLabel: string },
): AnomalyHit | undefined {
  if (!settings.enabled) return undefined;
  return {
    rule: 'scope_beyond_consent',
    code: codeOf('scope_beyond_consent'),
    severity: 'medium',
    explanation: `Сервис «${input.partnerName}» запросил данные сверх согласия: «${input.scopeLabel}» (область ${input.scope}) гражданин не разрешал.`,
    summary: `A read of ${input.resource} needs the scope ${input.scope}, which the consent does not grant.`,
    details: { resource: input.resource, scope: input.scope },
  };
}

/** A read of another person than the token's subject. */
export function subjectMismatchRule(
  settings: RuleSettings,
  input: { partnerName: string },
): AnomalyHit | undefined {
  if (!settings.enabled) return undefined;
  return {
    rule: 'subject_mismatch',
    code: codeOf('subject_mismatch'),
    severity: 'high',
    explanation: `Сервис «${input.partnerName}» по согласию одного гражданина запросил данные другого: идентификатор в запросе не совпадает с субъектом токена.`,
    summary: "The person in the request path is not the access token's subject.",
    details: {},
  };
}

/** What was done about a hit, as the alert records it. */
export type TakenAction =
  'session_blocked' | 'consent_paused' | 'citizen_notified' | 'partner_notified';

/** The citizen's notice (SMS or e-mail): what happened and what we did; [subject, text]. */
export function citizenNotice(
  hit: AnomalyHit,
  taken: { consentPaused: boolean; sessionBlocked: boolean; partnerName?: string | undefined },
): [string, string] {
  const partner = taken.partnerName ? `«${taken.partnerName}»` : '';
  const paused = taken.consentPaused
    ? ' Мы приостановили его доступ к вашим данным. Если вы доверяете сервису, возобновите доступ в разделе «Управление доступом».'
    : '';
  switch (hit.rule) {
    case 'request_frequency':
      return [
        'Подозрительная активность сервиса',
        `Госуслуги: сервис ${partner} запрашивал ваши данные необычно часто (${hit.details.reads} раз за минуту).${paused}`,
      ];
    case 'subject_mismatch':
      return [
        'Подозрительная активность сервиса',
        `Госуслуги: сервис ${partner} по вашему разрешению пытался получить данные другого человека.${paused}`,
      ];
    case 'token_certificate_mismatch':
      return [
        'Подозрительная активность',
        `Госуслуги: ключ доступа сервиса ${partner} к вашим данным предъявила другая организация. Данные ей не выданы.${paused}`,
      ];
    case 'scope_beyond_consent':
      return [
        'Подозрительная активность сервиса',
        `Госуслуги: сервис ${partner} запросил данные, на которые вы не давали согласия. Данные не выданы.${paused}`,
      ];
    case 'impossible_travel':
      return [
        'Подозрительный вход в аккаунт',
        `Госуслуги: вход в ваш аккаунт из страны «${countryName(String(hit.details.country))}» вскоре после входа из страны «${countryName(String(hit.details.previous_country))}».${taken.sessionBlocked ? ' Мы завершили все сеансы и временно заблокировали вход. Если это были вы, обратитесь в службу поддержки.' : ' Если это были не вы, обратитесь в службу поддержки.'}`,
      ];
    case 'new_device':
      return [
        'Вход с нового устройства',
        `Госуслуги: выполнен вход в ваш аккаунт с нового устройства.${taken.sessionBlocked ? ' Мы завершили все сеансы и временно заблокировали вход.' : ''} Если это были не вы, обратитесь в службу поддержки.`,
      ];
  }
}
