import type { Kysely } from 'kysely';
import type { AuditLog } from '../../platform/audit/audit-log.js';
import type { Clock } from '../../platform/clock.js';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import { inTransaction } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { LoginAttempt, LoginEvent, LoginVerdict } from '../../platform/login/login-routes.js';
import type { JsonValue, WebhookTables, Webhooks } from '../../platform/webhooks/index.js';
import type { Consent } from '../consents/consent.js';
import type { ConsentService } from '../consents/consent.service.js';
import { ScopeNotGrantedError } from '../data-api/resources.js';
import { isKnownScope, scopeLabel } from '../data-api/scope-catalog.js';
import { AccessRefused, type AccessTokenClaims } from '../partner-api/access-checks.js';
import type { AnomalyConfig } from './anomaly-config.js';
import { createReadCounter } from './anomaly-counter.js';
import {
  citizenNotice,
  impossibleTravelRule,
  newDeviceRule,
  requestFrequencyRule,
  scopeBeyondConsentRule,
  subjectMismatchRule,
  tokenCertificateMismatchRule,
  type AnomalyHit,
  type TakenAction,
} from './anomaly-rules.js';
import {
  createAnomalyStore,
  type SecurityAlertTable,
  type SecurityTables,
} from './anomaly.store.js';
import type { CountryLookup } from './geo.js';

/**
 * The anomaly rules engine: hooked into the citizen's login (screenLogin, onLoginEvent)
 * and the data API pipeline (checkRead after the access checks, onRefused when a check
 * refuses). Every hit becomes an alert — stored, audited, shown live in the security
 * center — and does what its rule's configured actions say: block the citizen's sessions,
 * pause the consent, tell the citizen, send `security.alert` to the partner concerned.
 */
export interface AnomalyServiceDeps {
  db: Kysely<SecurityTables & WebhookTables>;
  config: AnomalyConfig;
  clock: Clock;
  ids: IdGenerator;
  sealer: Sealer;
  /** Without it the geography rule sees no countries. */
  geo: CountryLookup | undefined;
  consents: Pick<ConsentService, 'get' | 'pauseForSecurity'>;
  webhooks: Pick<Webhooks, 'enqueue'>;
  /** Client addresses go in as `audit.pseudonym('ip', …)`: correlatable, not readable. */
  audit: Pick<AuditLog, 'append' | 'pseudonym'>;
  sessions: { deleteForUser(userId: string): Promise<number> };
  notifyCitizen(citizenId: string, subject: string, text: string): Promise<void>;
  partnerName(clientId: string): Promise<string>;
  partnerByThumbprint(thumbprint: string): Promise<{ client_id: string; name: string } | undefined>;
  logger?: { warn(obj: object, msg: string): void };
}

/** Data API refusals that are parameter mismatches (anomaly rules), by problem code. */
const MISMATCHES = new Set(['TOKEN_CERTIFICATE_MISMATCH', 'SUBJECT_MISMATCH', 'SCOPE_NOT_GRANTED']);

/** What the person at the login page reads when a rule blocked the login. */
export const LOGIN_BLOCKED_MESSAGE =
  'Вход временно заблокирован службой безопасности: замечена подозрительная активность. Все сеансы завершены. Если это были вы, обратитесь в службу поддержки.';

/** An alert as the security center shows it (the client address opened for the analyst). */
export interface AlertView {
  seq: string;
  id: string;
  at: Date;
  rule: string;
  code: string;
  severity: string;
  explanation: string;
  actions: TakenAction[];
  citizenId: string | null;
  clientId: string | null;
  consentId: string | null;
  ip: string | null;
}

interface Target {
  citizenId?: string | undefined;
  consent?: Consent | undefined;
  clientId?: string | undefined;
  ip?: string | undefined;
}

export function createAnomalyService(deps: AnomalyServiceDeps) {
  const { config, clock, ids } = deps;
  const store = createAnomalyStore(deps.db as unknown as Kysely<SecurityTables>);
  const warn = (err: unknown, msg: string) => deps.logger?.warn({ err }, msg);
  const reads = createReadCounter({
    store,
    onFlushError: (err) => warn(err, 'security read counters: flush failed'),
  });
  /**
   * Per instance: consents (and refusal kinds) whose hit is being handled or was just
   * raised; the database cool-down still decides across instances.
   */
  const quietUntil = new Map<string, number>();
  const ipAad = (alertId: string) => recordAad('security_alerts', alertId, 'ip');
  const ipRef = (ip: string) => deps.audit.pseudonym('ip', ip);

  /**
   * Turns a hit into an alert and the rule's actions. With `cooldown`, a repeat of the
   * rule on the same consent within cooldownMinutes raises nothing (returns undefined).
   */
  async function raise(hit: AnomalyHit, target: Target, opts: { cooldown: boolean }) {
    const settings = config.rules[hit.rule];
    const now = clock.now();
    if (opts.cooldown && config.cooldownMinutes > 0) {
      const since = new Date(now.getTime() - config.cooldownMinutes * 60_000);
      const on = { consentId: target.consent?.id, citizenId: target.citizenId };
      if (await store.firedSince(hit.rule, on, since)) return undefined;
    }
    const id = ids.uuid();
    const wants = (action: (typeof settings.actions)[number]) => settings.actions.includes(action);
    const taken: TakenAction[] = [];

    let paused: Consent | undefined;
    if (wants('pause_consent') && target.consent) {
      paused = await deps.consents.pauseForSecurity(target.consent.id, {
        alert_id: id,
        code: hit.code,
      });
      if (paused) taken.push('consent_paused');
    }
    const blocked = wants('block_session') && target.citizenId !== undefined;
    if (blocked) taken.push('session_blocked');
    const partnerName = target.clientId ? await deps.partnerName(target.clientId) : undefined;
    if (wants('notify_citizen') && target.citizenId) {
      const [subject, text] = citizenNotice(hit, {
        consentPaused: paused !== undefined,
        sessionBlocked: blocked,
        partnerName,
      });
      try {
        await deps.notifyCitizen(target.citizenId, subject, text);
        taken.push('citizen_notified');
      } catch (err) {
        warn(err, 'security alert: the citizen could not be notified');
      }
    }
    const toPartner = wants('notify_partner') && target.clientId ? target.clientId : undefined;
    if (toPartner) taken.push('partner_notified');

    const ip = target.ip ? serializeSealed(await deps.sealer.seal(target.ip, ipAad(id))) : null;
    // The alert, the block and the partner's webhook commit together or not at all.
    await inTransaction(deps.db, async (trx) => {
      const tx = trx as unknown as Kysely<SecurityTables>;
      await store.insertAlert(tx, {
        id,
        at: now,
        rule: hit.rule,
        code: hit.code,
        severity: hit.severity,
        explanation: hit.explanation,
        summary: hit.summary,
        citizen_id: target.citizenId ?? null,
        client_id: target.clientId ?? null,
        consent_id: target.consent?.id ?? null,
        details: hit.details,
        actions: taken,
        ip,
      });
      if (blocked) {
        await store.insertBlock(tx, {
          id: ids.uuid(),
          citizen_id: target.citizenId!,
          alert_id: id,
          blocked_at: now,
          blocked_until: new Date(now.getTime() + config.sessionBlockHours * 3_600_000),
          lifted_at: null,
          lifted_by: null,
        });
      }
      if (toPartner) {
        await deps.webhooks.enqueue(trx, toPartner, 'security.alert', partnerPayload());
      }
    });
    // After the block has committed: no new login can start, so every session can go.
    if (blocked) await deps.sessions.deleteForUser(target.citizenId!);
    await deps.audit.append({
      actor: 'system:anomaly',
      action: 'security.alert',
      subject: target.consent
        ? `consent:${target.consent.id}`
        : target.citizenId
          ? `citizen:${target.citizenId}`
          : target.clientId
            ? `partner:${target.clientId}`
            : undefined,
      details: {
        alert: id,
        rule: hit.rule,
        code: hit.code,
        severity: hit.severity,
        actions: taken,
        ...(target.ip ? { ip: ipRef(target.ip) } : {}),
      },
    });
    return { alertId: id, consentPaused: paused !== undefined, sessionBlocked: blocked };

    /** `security.alert` for the partner: codes and numbers, nothing about the citizen. */
    function partnerPayload(): JsonValue {
      return {
        alert_id: id,
        code: hit.code,
        severity: hit.severity,
        summary: hit.summary,
        detected_at: now.toISOString(),
        ...(target.consent
          ? {
              consent_id: target.consent.id,
              consent_status: paused ? paused.status : target.consent.status,
            }
          : {}),
        actions: taken.filter((a) => a === 'consent_paused'),
        details: hit.details,
      };
    }
  }

  const toView = async (row: SecurityAlertTable): Promise<AlertView> => ({
    seq: String(row.seq),
    id: row.id,
    at: new Date(row.at),
    rule: row.rule,
    code: row.code,
    severity: row.severity,
    explanation: row.explanation,
    actions: row.actions,
    citizenId: row.citizen_id,
    clientId: row.client_id,
    consentId: row.consent_id,
    ip: row.ip
      ? await deps.sealer.openText(parseSealed(row.ip), ipAad(row.id)).catch(() => null)
      : null,
  });

  return {
    config,

    /** The citizen's login block in force, if any (the login flow refuses them). */
    isBlocked: (citizenId: string) => store.activeBlock(citizenId, clock.now()),

    /**
     * Both factors were right: records the login (country, device) and runs the login
     * rules against the citizen's history. A hit whose rule blocks refuses this login too.
     */
    async screenLogin(attempt: LoginAttempt): Promise<LoginVerdict> {
      const history = await store.loginHistory(attempt.accountId, attempt.deviceHash);
      const country = deps.geo?.country(attempt.ip);
      await store.recordLogin({
        id: ids.uuid(),
        citizen_id: attempt.accountId,
        at: attempt.at,
        country: country ?? null,
        device_hash: attempt.deviceHash ?? null,
      });
      const hits = [
        impossibleTravelRule(config.rules.impossible_travel, {
          country,
          at: attempt.at,
          previous: history.lastWithCountry,
        }),
        newDeviceRule(config.rules.new_device, {
          deviceHash: attempt.deviceHash,
          earlierLogins: history.earlierLogins,
          deviceSeenBefore: history.deviceSeenBefore,
        }),
      ];
      let blocked = false;
      for (const hit of hits) {
        if (!hit) continue;
        const outcome = await raise(
          hit,
          { citizenId: attempt.accountId, ip: attempt.ip },
          { cooldown: false },
        );
        if (outcome?.sessionBlocked) blocked = true;
      }
      return blocked ? { allow: false, message: LOGIN_BLOCKED_MESSAGE } : { allow: true };
    },

    /**
     * Login events into the audit log (ids, the country and a pseudonym of the address;
     * never the address or what was typed). A reused TOTP code and an app enrolled anew on
     * another device are also told to the citizen (ASVS 2.8.5, 2.2.3).
     */
    async onLoginEvent(event: LoginEvent): Promise<void> {
      const accountId = 'accountId' in event ? event.accountId : undefined;
      await deps.audit.append({
        actor: accountId ? `citizen:${accountId}` : 'anonymous',
        action: event.type,
        subject: accountId ? `citizen:${accountId}` : undefined,
        details: {
          ip: ipRef(event.ip),
          country: deps.geo?.country(event.ip) ?? null,
          ...(event.type === 'login.succeeded' ? { method: event.method } : {}),
        },
      });
      const notices: Partial<Record<LoginEvent['type'], [string, string]>> = {
        'login.totp_reused': [
          'Повторный код при входе',
          'Госуслуги: при входе в ваш аккаунт введён уже использованный код из приложения-аутентификатора; вход не выполнен. Если это были не вы, обратитесь в службу поддержки.',
        ],
        'login.device_reenrolled': [
          'Приложение-аутентификатор подключено на новом устройстве',
          'Госуслуги: приложение-аутентификатор подключено заново на новом устройстве; прежняя привязка больше не действует. Если это были не вы, обратитесь в службу поддержки.',
        ],
      };
      const notice = notices[event.type];
      if (notice && accountId) {
        await deps.notifyCitizen(accountId, ...notice).catch((err: unknown) => {
          warn(err, 'login notice could not be sent');
        });
      }
    },

    /**
     * The frequency rule, after every other check has let the read through. Counting costs
     * no database round trip; a hit pauses the consent (by default) and refuses this read.
     */
    async checkRead(ctx: { consent: Consent; ip: string }): Promise<void> {
      const settings = config.rules.request_frequency;
      if (!settings.enabled) return;
      const now = clock.now();
      const estimate = reads.hit(ctx.consent.id, now);
      if (estimate <= settings.maxReadsPerMinute) return;
      if ((quietUntil.get(ctx.consent.id) ?? 0) > now.getTime()) return;
      quietUntil.set(ctx.consent.id, now.getTime() + Math.max(1, config.cooldownMinutes) * 60_000);
      const hit = requestFrequencyRule(settings, {
        reads: estimate,
        partnerName: await deps.partnerName(ctx.consent.clientId),
      });
      if (!hit) return;
      const outcome = await raise(
        hit,
        {
          consent: ctx.consent,
          citizenId: ctx.consent.citizenId,
          clientId: ctx.consent.clientId,
          ip: ctx.ip,
        },
        { cooldown: true },
      );
      if (outcome?.consentPaused) {
        throw new AccessRefused(
          'ANOMALY_DETECTED',
          403,
          'Unusually frequent reads: the portal paused this consent (see the security.alert event).',
        );
      }
    },

    /**
     * A data API check refused a read: the refusals that are parameter mismatches (a token
     * over another client's certificate, data beyond the consent, another person) are hits.
     * Never throws: the original refusal is what the partner gets.
     */
    async onRefused(
      err: unknown,
      ctx: { claims: AccessTokenClaims | undefined; ip: string; peerThumbprint?: string },
    ): Promise<void> {
      if (!(err instanceof AppError) || !ctx.claims || !MISMATCHES.has(err.code)) return;
      const { claims } = ctx;
      // A flood of the same refusal costs one look at the database per cool-down.
      const now = clock.now().getTime();
      const quietKey = `${err.code}|${claims.client_id}|${claims.consent_id}`;
      if ((quietUntil.get(quietKey) ?? 0) > now) return;
      quietUntil.set(quietKey, now + Math.max(1, config.cooldownMinutes) * 60_000);
      try {
        const consentOf = async () => {
          const consent = await deps.consents.get(claims.consent_id);
          return consent?.clientId === claims.client_id ? consent : undefined;
        };
        let hit: AnomalyHit | undefined;
        let consent: Consent | undefined;
        if (err.code === 'TOKEN_CERTIFICATE_MISMATCH' && ctx.peerThumbprint) {
          const presenter = await deps.partnerByThumbprint(ctx.peerThumbprint);
          hit = tokenCertificateMismatchRule(config.rules.token_certificate_mismatch, {
            tokenPartner: await deps.partnerName(claims.client_id),
            presenter: presenter?.name,
          });
          consent = await consentOf();
        } else if (err.code === 'SUBJECT_MISMATCH') {
          hit = subjectMismatchRule(config.rules.subject_mismatch, {
            partnerName: await deps.partnerName(claims.client_id),
          });
          consent = await consentOf();
        } else if (err instanceof ScopeNotGrantedError) {
          hit = scopeBeyondConsentRule(config.rules.scope_beyond_consent, {
            partnerName: await deps.partnerName(claims.client_id),
            resource: err.resource,
            scope: err.scope,
            scopeLabel: isKnownScope(err.scope) ? scopeLabel(err.scope) : err.scope,
          });
          consent = await consentOf();
        }
        if (!hit) return;
        await raise(
          hit,
          { consent, citizenId: consent?.citizenId, clientId: claims.client_id, ip: ctx.ip },
          { cooldown: true },
        );
      } catch (e) {
        warn(e, 'anomaly rule failed on a refused read');
      }
    },

    async recentAlerts(limit = 50): Promise<AlertView[]> {
      return Promise.all((await store.recentAlerts(limit)).map(toView));
    },

    async alertsAfter(seq: string, limit = 100): Promise<AlertView[]> {
      return Promise.all((await store.alertsAfter(seq, limit)).map(toView));
    },

    lastAlertSeq: () => store.lastAlertSeq(),

    activeBlocks: () => store.activeBlocks(clock.now()),

    /** An analyst lifts a block: the citizen can log in again. Audited. */
    async unblock(blockId: string, analystId: string): Promise<boolean> {
      const citizenId = await store.liftBlock(blockId, `security:${analystId}`, clock.now());
      if (!citizenId) return false;
      await deps.audit.append({
        actor: `security:${analystId}`,
        action: 'security.session_unblocked',
        subject: `citizen:${citizenId}`,
        details: { block: blockId },
      });
      return true;
    },

    /** Adds this instance's pending read counts to the shared counters now. */
    flushCounters: () => reads.flush(),

    /** Housekeeping: read counters older than 5 min, login history older than 180 days. */
    sweep(now: Date) {
      return store.sweep(
        new Date(now.getTime() - 5 * 60_000),
        new Date(now.getTime() - 180 * 24 * 3_600_000),
      );
    },
  };
}

export type AnomalyService = ReturnType<typeof createAnomalyService>;
