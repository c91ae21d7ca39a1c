import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '../../platform/clock.js';
import {
  AnomalyConfigError,
  DEFAULT_ANOMALY_CONFIG,
  loadAnomalyConfig,
  resolveAnomalyConfig,
} from './anomaly-config.js';
import { createReadCounter } from './anomaly-counter.js';
import {
  citizenNotice,
  impossibleTravelRule,
  newDeviceRule,
  requestFrequencyRule,
  scopeBeyondConsentRule,
  slidingReads,
  subjectMismatchRule,
  tokenCertificateMismatchRule,
} from './anomaly-rules.js';
import { countryName, isPublicIp, openCountryLookup, type CountryLookup } from './geo.js';

const rules = DEFAULT_ANOMALY_CONFIG.rules;
const clock = manualClock('2026-12-01T09:00:00Z');
const minutes = (n: number) => new Date(clock.now().getTime() + n * 60_000);

/**
 * Public addresses the offline database places in Russia and in Germany: picked here from
 * a few well-known hosts by asking the database itself, so the tests keep working when the
 * data is refreshed (they fail loudly if none of the candidates is in the country any more).
 */
const CANDIDATES = {
  RU: ['77.88.8.8', '87.250.250.242', '5.255.255.242', '217.69.139.200', '95.213.4.1'],
  DE: ['193.99.144.80', '85.13.134.1', '141.1.1.1', '217.160.0.1', '91.198.174.192'],
};

let geo: CountryLookup;
let ru: string;
let de: string;

beforeAll(async () => {
  geo = await openCountryLookup();
  const pick = (country: 'RU' | 'DE') => {
    const ip = CANDIDATES[country].find((c) => geo.country(c) === country);
    if (!ip) throw new Error(`none of ${CANDIDATES[country].join(', ')} is in ${country} any more`);
    return ip;
  };
  ru = pick('RU');
  de = pick('DE');
});

describe('IP geography (offline database)', () => {
  it('finds the country of public addresses', () => {
    expect(geo.country(ru)).toBe('RU');
    expect(geo.country(de)).toBe('DE');
    expect(geo.country(`::ffff:${ru}`)).toBe('RU'); // IPv4 on a dual-stack socket
    expect(countryName('RU')).toBe('Россия');
    expect(countryName('DE')).toBe('Германия');
  });

  it.each([
    '127.0.0.1',
    '::1',
    '10.1.2.3',
    '172.16.5.4',
    '192.168.1.1', // the raw database would say AU
    '100.64.0.1',
    '169.254.1.1',
    '203.0.113.7',
    'fd00::1',
    'fe80::1',
    '::ffff:127.0.0.1',
    'not-an-ip',
  ])('gives %s no country', (ip) => {
    expect(isPublicIp(ip)).toBe(false);
    expect(geo.country(ip)).toBeUndefined();
  });
});

describe('rule: request frequency', () => {
  const settings = { ...rules.request_frequency, maxReadsPerMinute: 60 };

  it('fires above the threshold only, and explains itself', () => {
    expect(requestFrequencyRule(settings, { reads: 60, partnerName: 'Банк' })).toBeUndefined();
    const hit = requestFrequencyRule(settings, { reads: 60.2, partnerName: 'Банк' })!;
    expect(hit).toMatchObject({
      rule: 'request_frequency',
      code: 'REQUEST_FREQUENCY',
      severity: 'high',
      details: { reads: 61, threshold: 60, window_seconds: 60 },
    });
    expect(hit.explanation).toBe(
      'Сервис «Банк» запросил данные по одному согласию 61 раз за минуту (порог — 60).',
    );
    expect(hit.summary).toContain('above the threshold of 60');
  });

  it('does nothing when disabled', () => {
    expect(
      requestFrequencyRule({ ...settings, enabled: false }, { reads: 1e6, partnerName: 'Банк' }),
    ).toBeUndefined();
  });

  it('estimates the last 60 s from two fixed windows', () => {
    expect(slidingReads(0, 10, 0)).toBe(10);
    expect(slidingReads(60, 0, 0)).toBe(60); // the previous minute still fully counts
    expect(slidingReads(60, 10, 30_000)).toBe(40); // half of it
    expect(slidingReads(60, 10, 59_999)).toBeCloseTo(10, 2);
  });

  it('counts reads per consent in memory, across minutes', async () => {
    const counter = createReadCounter({ store: { addReads: async () => [] } });
    const at = (ms: number) => new Date(Date.parse('2026-12-01T09:00:00Z') + ms);
    for (let i = 1; i <= 30; i++) expect(counter.hit('c1', at(1000))).toBe(i);
    expect(counter.hit('c2', at(1000))).toBe(1); // another consent counts apart
    // Half-way through the next minute: half of the 30 plus this read.
    expect(counter.hit('c1', at(90_000))).toBe(16);
    // Two minutes later nothing of the first minute is left.
    expect(counter.hit('c1', at(180_000))).toBe(1);
  });
});

describe('rule: impossible travel', () => {
  const settings = { ...rules.impossible_travel, windowMinutes: 120 };

  it('fires for two countries within the window, with both named', () => {
    const hit = impossibleTravelRule(settings, {
      country: geo.country(de),
      at: minutes(30),
      previous: { country: geo.country(ru)!, at: clock.now() },
    })!;
    expect(hit).toMatchObject({
      rule: 'impossible_travel',
      code: 'IMPOSSIBLE_TRAVEL',
      severity: 'high',
      details: { country: 'DE', previous_country: 'RU', minutes_between: 30, window_minutes: 120 },
    });
    expect(hit.explanation).toBe(
      'Вход из страны «Германия» (DE) через 30 мин после входа из страны «Россия» (RU); так быстро переместиться нельзя (окно — 120 мин).',
    );
  });

  it('does not fire for the same country, outside the window, or without a country', () => {
    const previous = { country: 'RU', at: clock.now() };
    expect(
      impossibleTravelRule(settings, { country: geo.country(ru), at: minutes(5), previous }),
    ).toBeUndefined();
    expect(
      impossibleTravelRule(settings, { country: 'DE', at: minutes(120), previous }),
    ).toBeUndefined();
    expect(
      impossibleTravelRule(settings, {
        country: geo.country('127.0.0.1'),
        at: minutes(1),
        previous,
      }),
    ).toBeUndefined();
    expect(
      impossibleTravelRule(settings, { country: 'DE', at: minutes(1), previous: undefined }),
    ).toBeUndefined();
  });

  it('follows the configured window', () => {
    const previous = { country: 'RU', at: clock.now() };
    const narrow = { ...settings, windowMinutes: 10 };
    expect(impossibleTravelRule(narrow, { country: 'DE', at: minutes(9), previous })).toBeDefined();
    expect(
      impossibleTravelRule(narrow, { country: 'DE', at: minutes(10), previous }),
    ).toBeUndefined();
  });
});

describe('rule: new device', () => {
  const settings = rules.new_device;

  it('fires for an unseen device of an account that has logged in before', () => {
    const hit = newDeviceRule(settings, {
      deviceHash: 'a'.repeat(64),
      earlierLogins: 3,
      deviceSeenBefore: false,
    })!;
    expect(hit).toMatchObject({ rule: 'new_device', code: 'NEW_DEVICE', severity: 'low' });
    expect(hit.explanation).toContain('Вход с нового устройства');
  });

  it('does not fire for a known device, a first login or without a device cookie', () => {
    const base = { deviceHash: 'a'.repeat(64), earlierLogins: 3, deviceSeenBefore: false };
    expect(newDeviceRule(settings, { ...base, deviceSeenBefore: true })).toBeUndefined();
    expect(newDeviceRule(settings, { ...base, earlierLogins: 0 })).toBeUndefined();
    expect(newDeviceRule(settings, { ...base, deviceHash: undefined })).toBeUndefined();
  });
});

describe('rules: parameter mismatch', () => {
  it('a token presented with another client certificate', () => {
    const hit = tokenCertificateMismatchRule(rules.token_certificate_mismatch, {
      tokenPartner: 'Банк А',
      presenter: 'Банк Б',
    })!;
    expect(hit.code).toBe('TOKEN_CERTIFICATE_MISMATCH');
    expect(hit.explanation).toBe(
      'Токен доступа сервиса «Банк А» предъявлен с сертификатом другого клиента («Банк Б»): токен мог быть похищен.',
    );
    expect(
      tokenCertificateMismatchRule(rules.token_certificate_mismatch, {
        tokenPartner: 'Банк А',
        presenter: undefined,
      })!.details,
    ).toEqual({ presenter_known: false });
  });

  it('fields requested beyond the consent', () => {
    const hit = scopeBeyondConsentRule(rules.scope_beyond_consent, {
      partnerName: 'Банк',
      resource: 'docs',
      scope: 'id_doc',
      scopeLabel: 'Паспорт',
    })!;
    expect(hit).toMatchObject({
      code: 'SCOPE_BEYOND_CONSENT',
      severity: 'medium',
      details: { resource: 'docs', scope: 'id_doc' },
    });
    expect(hit.explanation).toContain('«Паспорт» (область id_doc)');
  });

  it('the subject in the path not matching the token', () => {
    const hit = subjectMismatchRule(rules.subject_mismatch, { partnerName: 'Банк' })!;
    expect(hit.code).toBe('SUBJECT_MISMATCH');
    expect(hit.explanation).toContain('данные другого');
  });

  it('each does nothing when disabled', () => {
    const off = { enabled: false, actions: [] };
    expect(
      tokenCertificateMismatchRule(off, { tokenPartner: 'A', presenter: 'B' }),
    ).toBeUndefined();
    expect(
      scopeBeyondConsentRule(off, {
        partnerName: 'A',
        resource: 'docs',
        scope: 'id_doc',
        scopeLabel: 'x',
      }),
    ).toBeUndefined();
    expect(subjectMismatchRule(off, { partnerName: 'A' })).toBeUndefined();
  });
});

describe('the citizen notice', () => {
  it('says what was seen and what was done', () => {
    const hit = requestFrequencyRule(rules.request_frequency, { reads: 500, partnerName: 'Банк' })!;
    const [subject, text] = citizenNotice(hit, {
      consentPaused: true,
      sessionBlocked: false,
      partnerName: 'Банк',
    });
    expect(subject).toBe('Подозрительная активность сервиса');
    expect(text).toContain(
      'сервис «Банк» запрашивал ваши данные необычно часто (500 раз за минуту)',
    );
    expect(text).toContain('Мы приостановили его доступ');
    const travel = impossibleTravelRule(rules.impossible_travel, {
      country: 'DE',
      at: minutes(5),
      previous: { country: 'RU', at: clock.now() },
    })!;
    expect(citizenNotice(travel, { consentPaused: false, sessionBlocked: true })[1]).toContain(
      'Мы завершили все сеансы и временно заблокировали вход',
    );
  });
});

describe('rules as configuration', () => {
  it('defaults, with overrides merged in', () => {
    expect(resolveAnomalyConfig({})).toEqual(DEFAULT_ANOMALY_CONFIG);
    const config = resolveAnomalyConfig({
      cooldownMinutes: 1,
      rules: {
        request_frequency: { maxReadsPerMinute: 5 },
        new_device: { enabled: false },
        scope_beyond_consent: { actions: ['pause_consent', 'notify_partner'] },
      },
    });
    expect(config.cooldownMinutes).toBe(1);
    expect(config.rules.request_frequency).toEqual({
      ...DEFAULT_ANOMALY_CONFIG.rules.request_frequency,
      maxReadsPerMinute: 5,
    });
    expect(config.rules.new_device.enabled).toBe(false);
    expect(config.rules.scope_beyond_consent.actions).toEqual(['pause_consent', 'notify_partner']);
    expect(DEFAULT_ANOMALY_CONFIG.rules.request_frequency.maxReadsPerMinute).toBe(120);
  });

  it('reports every problem at once', () => {
    let error: AnomalyConfigError | undefined;
    try {
      resolveAnomalyConfig({
        cooldown: 3,
        sessionBlockHours: 0,
        rules: {
          request_frequency: { maxReadsPerMinute: -1, actions: ['block_session'] },
          impossible_travel: { actions: ['pause_consent', 'shout'], windowMinutes: 'soon' },
          unknown_rule: {},
        },
      });
    } catch (err) {
      error = err as AnomalyConfigError;
    }
    expect(error).toBeInstanceOf(AnomalyConfigError);
    expect(error!.problems).toEqual([
      'unknown setting "cooldown"',
      'sessionBlockHours must be an integer from 1 to 8760',
      'rules.request_frequency.maxReadsPerMinute must be an integer from 1 to 1000000',
      'rules.request_frequency.actions: block_session applies to login rules only',
      'rules.impossible_travel.actions: pause_consent applies to data API rules only',
      'rules.impossible_travel.actions: unknown action "shout"',
      'rules.impossible_travel.windowMinutes must be an integer from 1 to 10080',
      'unknown rule "unknown_rule" (known: request_frequency, impossible_travel, new_device, token_certificate_mismatch, scope_beyond_consent, subject_mismatch)',
    ]);
  });

  it('reads the data directory file when there is one', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-anomaly-'));
    try {
      const file = path.join(dir, 'anomaly-rules.json');
      expect(loadAnomalyConfig(file)).toEqual(DEFAULT_ANOMALY_CONFIG);
      writeFileSync(file, JSON.stringify({ rules: { impossible_travel: { windowMinutes: 30 } } }));
      expect(loadAnomalyConfig(file).rules.impossible_travel.windowMinutes).toBe(30);
      writeFileSync(file, '{ not json');
      expect(() => loadAnomalyConfig(file)).toThrow(/not valid JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
