import { existsSync, readFileSync } from 'node:fs';

/**
 * The anomaly rules as configuration: which rules run, their thresholds and what a hit
 * does. Every hit is stored as an alert, shown live in the security center and written
 * to the audit log; the actions below come on top. Defaults are DEFAULT_ANOMALY_CONFIG;
 * a deployment overrides any part of it in `<data dir>/anomaly-rules.json` (read at
 * start, checked, every problem reported at once), tests and benchmarks through
 * `buildPortalApp(runtime, { anomaly })`.
 */
export const ANOMALY_RULES = [
  'request_frequency',
  'impossible_travel',
  'new_device',
  'token_certificate_mismatch',
  'scope_beyond_consent',
  'subject_mismatch',
] as const;

export type AnomalyRuleId = (typeof ANOMALY_RULES)[number];

/**
 * What a hit does besides the alert: end the citizen's sessions and block new logins
 * until an analyst unblocks (login rules), pause the consent (data API rules), tell the
 * citizen (SMS or e-mail), send `security.alert` to the partner concerned (webhook).
 */
export const ANOMALY_ACTIONS = [
  'block_session',
  'pause_consent',
  'notify_citizen',
  'notify_partner',
] as const;

export type AnomalyAction = (typeof ANOMALY_ACTIONS)[number];

/** Rules that look at logins (a citizen, no partner) and at the data API (a consent). */
export const LOGIN_RULES: readonly AnomalyRuleId[] = ['impossible_travel', 'new_device'];

export interface RuleSettings {
  enabled: boolean;
  actions: AnomalyAction[];
}

export interface AnomalyConfig {
  /** A repeat of a rule on the same consent or citizen within this time raises no new alert. */
  cooldownMinutes: number;
  /** A blocked citizen can log in again after this long, or earlier when an analyst unblocks. */
  sessionBlockHours: number;
  rules: {
    /** More data API reads under one consent in the last 60 s than the threshold. */
    request_frequency: RuleSettings & { maxReadsPerMinute: number };
    /** Two logins of one citizen from different countries within the window. */
    impossible_travel: RuleSettings & { windowMinutes: number };
    /** A login from a device (device cookie) the citizen never logged in from before. */
    new_device: RuleSettings;
    /** A partner's access token presented with another client's certificate. */
    token_certificate_mismatch: RuleSettings;
    /** A read of data the consent does not cover (a scope the citizen did not grant). */
    scope_beyond_consent: RuleSettings;
    /** A read of another person than the token's subject (the oid in the path). */
    subject_mismatch: RuleSettings;
  };
}

export const DEFAULT_ANOMALY_CONFIG: AnomalyConfig = Object.freeze({
  cooldownMinutes: 10,
  sessionBlockHours: 24,
  rules: {
    request_frequency: {
      enabled: true,
      maxReadsPerMinute: 120,
      actions: ['pause_consent', 'notify_citizen', 'notify_partner'],
    },
    impossible_travel: {
      enabled: true,
      windowMinutes: 120,
      actions: ['block_session', 'notify_citizen'],
    },
    new_device: { enabled: true, actions: ['notify_citizen'] },
    // The token is useless with another certificate (RFC 8705): the partner whose token
    // leaked is told; the consent stays, its owner's reads are unaffected.
    token_certificate_mismatch: { enabled: true, actions: ['notify_partner'] },
    scope_beyond_consent: { enabled: true, actions: ['notify_partner'] },
    subject_mismatch: {
      enabled: true,
      actions: ['pause_consent', 'notify_citizen', 'notify_partner'],
    },
  },
}) as AnomalyConfig;

export const ANOMALY_CONFIG_FILE = 'anomaly-rules.json';

export class AnomalyConfigError extends Error {
  readonly code = 'ERR_ANOMALY_CONFIG';
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(
      `${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'AnomalyConfigError';
  }
}

/** Overrides as a deployment writes them: any part, the rest from the defaults. */
export type AnomalyOverrides = {
  cooldownMinutes?: number;
  sessionBlockHours?: number;
  rules?: { [K in AnomalyRuleId]?: Partial<AnomalyConfig['rules'][K]> };
};

const NUMBERS: Record<string, readonly [min: number, max: number]> = {
  cooldownMinutes: [0, 7 * 24 * 60],
  sessionBlockHours: [1, 24 * 365],
  maxReadsPerMinute: [1, 1_000_000],
  windowMinutes: [1, 7 * 24 * 60],
};

/** Merges `overrides` over the defaults; throws AnomalyConfigError listing every problem. */
export function resolveAnomalyConfig(
  overrides: unknown = {},
  source = 'The anomaly configuration',
): AnomalyConfig {
  const problems: string[] = [];
  const config = structuredClone(DEFAULT_ANOMALY_CONFIG) as AnomalyConfig;
  if (!isObject(overrides)) throw new AnomalyConfigError(source, ['it must be a JSON object']);

  const number = (where: string, name: string, value: unknown): number | undefined => {
    const [min, max] = NUMBERS[name]!;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push(`${where}${name} must be an integer from ${min} to ${max}`);
      return undefined;
    }
    return value;
  };

  for (const [key, value] of Object.entries(overrides)) {
    if (key === 'cooldownMinutes' || key === 'sessionBlockHours') {
      const n = number('', key, value);
      if (n !== undefined) config[key] = n;
    } else if (key === 'rules') {
      if (!isObject(value)) {
        problems.push('rules must be an object keyed by rule name');
        continue;
      }
      for (const [rule, settings] of Object.entries(value)) {
        if (!(ANOMALY_RULES as readonly string[]).includes(rule)) {
          problems.push(`unknown rule "${rule}" (known: ${ANOMALY_RULES.join(', ')})`);
          continue;
        }
        applyRule(rule as AnomalyRuleId, settings);
      }
    } else {
      problems.push(`unknown setting "${key}"`);
    }
  }
  if (problems.length > 0) throw new AnomalyConfigError(source, problems);
  return config;

  function applyRule(rule: AnomalyRuleId, settings: unknown) {
    const where = `rules.${rule}.`;
    if (!isObject(settings)) {
      problems.push(`rules.${rule} must be an object`);
      return;
    }
    const target = config.rules[rule] as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(settings)) {
      if (name === 'enabled') {
        if (typeof value !== 'boolean') problems.push(`${where}enabled must be true or false`);
        else target.enabled = value;
      } else if (name === 'actions') {
        const actions = checkActions(rule, value, where);
        if (actions) target.actions = actions;
      } else if (name in target && name in NUMBERS) {
        const n = number(where, name, value);
        if (n !== undefined) target[name] = n;
      } else {
        problems.push(`unknown setting "${where}${name}"`);
      }
    }
  }

  function checkActions(rule: AnomalyRuleId, value: unknown, where: string) {
    if (!Array.isArray(value) || !value.every((a) => typeof a === 'string')) {
      problems.push(`${where}actions must be a list of ${ANOMALY_ACTIONS.join(', ')}`);
      return undefined;
    }
    const login = LOGIN_RULES.includes(rule);
    let ok = true;
    for (const action of value as string[]) {
      if (!(ANOMALY_ACTIONS as readonly string[]).includes(action)) {
        problems.push(`${where}actions: unknown action "${action}"`);
        ok = false;
      } else if (action === 'block_session' && !login) {
        problems.push(`${where}actions: block_session applies to login rules only`);
        ok = false;
      } else if ((action === 'pause_consent' || action === 'notify_partner') && login) {
        problems.push(`${where}actions: ${action} applies to data API rules only`);
        ok = false;
      }
    }
    return ok ? [...new Set(value as AnomalyAction[])] : undefined;
  }
}

/** The defaults, overridden by `file` when it exists. */
export function loadAnomalyConfig(file: string): AnomalyConfig {
  if (!existsSync(file)) return resolveAnomalyConfig({});
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AnomalyConfigError(file, [`it is not valid JSON (${(err as Error).message})`]);
  }
  return resolveAnomalyConfig(parsed, file);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
