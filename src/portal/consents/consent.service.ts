import type { Clock } from '../../platform/clock.js';
import { BadRequestError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import {
  CONSENT_ACTIONS,
  CONSENT_DETAIL_TYPE,
  CONSENT_TYPES,
  type Consent,
  type ConsentAction,
  type ConsentEvent,
  type ConsentRequest,
  type ConsentType,
} from './consent.js';
import type { Kysely } from 'kysely';
import type { ConsentStore, ConsentTables } from './consent.store.js';

export const DEFAULT_CONSENT_DAYS = 90;
export const MAX_CONSENT_DAYS = 365;
const DAY_MS = 24 * 60 * 60_000;

/**
 * Reads the partner's request: the `soglasie_consent` entry of `authorization_details`
 * (RFC 9396) if present, otherwise a plain identification consent for the requested
 * scopes. Anything malformed is refused before the citizen sees it.
 */
export function parseConsentRequest(
  authorizationDetails: unknown,
  requestedScopes: string[],
  isKnownScope: (scope: string) => boolean,
): ConsentRequest {
  const dataScopes = requestedScopes.filter((s) => s !== 'openid' && s !== 'offline_access');
  const details = Array.isArray(authorizationDetails) ? authorizationDetails : [];
  const entry = details.find(
    (d): d is Record<string, unknown> =>
      typeof d === 'object' && d !== null && (d as { type?: unknown }).type === CONSENT_DETAIL_TYPE,
  );
  if (!entry) {
    return {
      type: 'IDENTIFICATION',
      purposes: [CONSENT_TYPES.IDENTIFICATION],
      actions: ['READ_AND_STORE'],
      scopes: dataScopes,
      optionalScopes: dataScopes.filter((s) => s !== 'fullname'),
      durationDays: DEFAULT_CONSENT_DAYS,
    };
  }
  const type = entry.sysname;
  if (typeof type !== 'string' || !Object.hasOwn(CONSENT_TYPES, type)) {
    throw invalid(`sysname must be one of ${Object.keys(CONSENT_TYPES).join(', ')}`);
  }
  const purposes = stringList(entry.purposes, 'purposes', 1, 200);
  const actions = stringList(entry.actions ?? ['READ_AND_STORE'], 'actions', 1, 32);
  for (const a of actions) {
    if (!Object.hasOwn(CONSENT_ACTIONS, a)) throw invalid(`unknown action ${a}`);
  }
  const scopes = stringList(entry.scopes ?? dataScopes, 'scopes', 1, 64);
  for (const s of scopes) {
    if (!isKnownScope(s)) throw invalid(`unknown scope ${s}`);
    // RFC 9396 §3: details must not widen what the scope parameter asks for.
    if (!dataScopes.includes(s)) throw invalid(`scope ${s} is not in the scope parameter`);
  }
  const optionalScopes = stringList(entry.optional_scopes ?? [], 'optional_scopes', 0, 64);
  for (const s of optionalScopes) {
    if (!scopes.includes(s)) throw invalid(`optional scope ${s} is not among the scopes`);
  }
  const days = entry.duration_days ?? DEFAULT_CONSENT_DAYS;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_CONSENT_DAYS) {
    throw invalid(`duration_days must be an integer from 1 to ${MAX_CONSENT_DAYS}`);
  }
  const applicationRef = entry.application_ref;
  if (
    applicationRef !== undefined &&
    (typeof applicationRef !== 'string' || applicationRef.length > 64)
  ) {
    throw invalid('application_ref must be a string of at most 64 characters');
  }
  return {
    type: type as ConsentType,
    purposes,
    actions: actions as ConsentAction[],
    scopes,
    optionalScopes,
    durationDays: days,
    applicationRef,
  };
}

function stringList(value: unknown, name: string, min: number, maxLength: number): string[] {
  if (
    !Array.isArray(value) ||
    value.length < min ||
    value.length > 32 ||
    !value.every((v) => typeof v === 'string' && v.length > 0 && v.length <= maxLength)
  ) {
    throw invalid(`${name} must be a list of ${min > 0 ? 'at least one ' : ''}short strings`);
  }
  return value as string[];
}

function invalid(message: string) {
  return new BadRequestError('INVALID_AUTHORIZATION_DETAILS', `authorization_details: ${message}.`);
}

/**
 * Tells the partner about a consent change, inside the transaction that makes it (the
 * transactional outbox: the event exists if and only if the change does).
 */
export type ConsentEventName =
  'consent.granted' | 'consent.revoked' | 'consent.expired' | 'consent.paused' | 'consent.resumed';

export type ConsentAnnouncer = (
  trx: Kysely<ConsentTables>,
  type: ConsentEventName,
  consent: Consent,
) => Promise<void>;

/** Why a portal-initiated connection (J1) did not go through; the partner says which. */
export const CONNECTION_FAILURES = {
  CUSTOMER_NOT_FOUND: 'Сервис не нашёл клиента с таким идентификатором',
  IDENTITY_MISMATCH: 'Данные клиента в сервисе не совпадают с данными Госуслуг',
  NO_RESPONSE: 'Сервис не ответил на запрос подключения (технический сбой)',
  REFUSED: 'Сервис отклонил подключение',
} as const;

export type ConnectionFailure = keyof typeof CONNECTION_FAILURES;

/** How long a partner has to prove deletion after a consent ends (then it is flagged). */
export const DELETION_DEADLINE_MS = 24 * 60 * 60_000;
/** How long a portal-initiated connection waits for the partner to take its token. */
export const CONNECTION_TIMEOUT_MS = 30 * 60_000;

export function createConsentService(deps: {
  store: ConsentStore;
  clock: Clock;
  ids: IdGenerator;
  announce?: ConsentAnnouncer;
  /**
   * After a change has committed: tell the citizen. Its failure is reported, never
   * undoes the change (a lost SMS must not resurrect a revoked consent).
   */
  afterChange?: (type: ConsentNotice, consent: Consent) => Promise<void>;
  /** Overrides for tests and the demo (deadline for receipts, J1 answer timeout). */
  deletionDeadlineMs?: number;
  connectionTimeoutMs?: number;
}) {
  const { store, clock, ids } = deps;
  const after = async (type: ConsentNotice, consent: Consent | undefined) => {
    if (consent) await deps.afterChange?.(type, consent).catch(() => undefined);
    return consent;
  };
  const event = (
    type: ConsentEvent['type'],
    actor: string,
    details: Record<string, unknown> = {},
  ) => ({
    id: ids.uuid(),
    type,
    at: clock.now(),
    actor,
    details,
  });
  const stamp = () => clock.now();
  const announce =
    (type: ConsentEventName) => async (trx: Kysely<ConsentTables>, consent: Consent) =>
      deps.announce?.(trx, type, consent);
  return {
    /** Records what the citizen approved: only the scopes they left ticked. */
    async grant(input: {
      id?: string;
      citizenId: string;
      clientId: string;
      grantId: string;
      request: ConsentRequest;
      approvedScopes: string[];
      /** J1: the citizen started it on the portal; it waits for the partner to connect. */
      portal?: { clientRefSealed: string };
    }): Promise<Consent> {
      const now = clock.now();
      const consent: Consent = {
        id: input.id ?? ids.uuid(),
        citizenId: input.citizenId,
        clientId: input.clientId,
        grantId: input.grantId,
        type: input.request.type,
        purposes: input.request.purposes,
        actions: input.request.actions,
        scopes: input.approvedScopes,
        applicationRef: input.request.applicationRef ?? null,
        origin: input.portal ? 'portal' : 'partner',
        clientRefSealed: input.portal?.clientRefSealed ?? null,
        status: input.portal ? 'pending' : 'active',
        grantedAt: now,
        expiresAt: new Date(now.getTime() + input.request.durationDays * DAY_MS),
        createdAt: now,
        updatedAt: now,
      };
      await store.insertWithEvent(
        consent,
        {
          id: ids.uuid(),
          consentId: consent.id,
          type: 'granted',
          at: now,
          actor: 'citizen',
          details: {
            scopes: input.approvedScopes,
            declined: input.request.scopes.filter((s) => !input.approvedScopes.includes(s)),
          },
        },
        announce('consent.granted'),
      );
      await after('consent.granted', consent);
      return consent;
    },

    /**
     * The consent behind a grant, only if it allows access at this very moment: active
     * and not past its end. Called on every data read, never cached.
     */
    async activeForGrant(grantId: string): Promise<Consent | undefined> {
      const consent = await store.findByGrant(grantId);
      if (!consent || consent.status !== 'active') return undefined;
      if (consent.expiresAt.getTime() <= clock.now().getTime()) return undefined;
      return consent;
    },

    /** The grant behind the consent is gone (e.g. a replayed code): the consent ends with it. */
    async revokeForGrant(grantId: string, actor: string, reason: string) {
      return after(
        'consent.revoked',
        await store.endWithEvent(
          { grantId },
          'revoked',
          { id: ids.uuid(), type: 'revoked', at: clock.now(), actor, details: { reason } },
          announce('consent.revoked'),
          stamp,
        ),
      );
    },

    /**
     * J5: the citizen ends a consent. Once this commits, every data read under it is
     * refused (the data API checks the consent on each read); the caller then removes the
     * grant's tokens. Returns undefined if the consent is not the citizen's or already over.
     */
    async revokeByCitizen(consentId: string, citizenId: string): Promise<Consent | undefined> {
      const consent = await store.get(consentId);
      if (!consent || consent.citizenId !== citizenId) return undefined;
      return after(
        'consent.revoked',
        await store.endWithEvent(
          { consentId },
          'revoked',
          { id: ids.uuid(), type: 'revoked', at: clock.now(), actor: 'citizen', details: {} },
          announce('consent.revoked'),
          stamp,
        ),
      );
    },

    /**
     * Marks consents past their end as expired and tells their partners. Reads never
     * waited for this — every read checks the end date itself — so a late run only
     * delays the status and the event. Returns the grants that expired (to drop tokens).
     */
    async expireOverdue(limit = 100): Promise<string[]> {
      const expired: string[] = [];
      for (const grantId of await store.overdue(clock.now(), limit)) {
        const ended = await store.endWithEvent(
          { grantId },
          'expired',
          { id: ids.uuid(), type: 'expired', at: clock.now(), actor: 'system', details: {} },
          announce('consent.expired'),
          stamp,
        );
        if (ended) expired.push(grantId);
        await after('consent.expired', ended);
      }
      return expired;
    },

    /**
     * The partner proves it deleted what it held under an ended consent. The signed
     * receipt is kept as it came, for the citizen's timeline; a second one is ignored.
     */
    async recordDeletion(
      consent: Consent,
      receipt: { jws: string; deleted: string[]; deletedAt: string },
    ): Promise<'recorded' | 'already'> {
      if ((await store.events(consent.id)).some((e) => e.type === 'deletion_confirmed'))
        return 'already';
      await store.addEvent({
        id: ids.uuid(),
        consentId: consent.id,
        type: 'deletion_confirmed',
        at: clock.now(),
        actor: 'partner',
        details: { deleted: receipt.deleted, deleted_at: receipt.deletedAt, receipt: receipt.jws },
      });
      return 'recorded';
    },

    /**
     * J1: the partner matched its customer and takes its token: a pending portal-initiated
     * consent of that partner becomes active (already active: returned as it is, so a
     * retried token request after a lost response still succeeds).
     */
    async connect(consentId: string, clientId: string): Promise<Consent | undefined> {
      const consent = await store.get(consentId);
      if (!consent || consent.origin !== 'portal' || consent.clientId !== clientId)
        return undefined;
      if (consent.status === 'active') return consent;
      if (consent.expiresAt.getTime() <= clock.now().getTime()) return undefined;
      return store.moveWithEvent(consentId, ['pending'], 'active', event('connected', 'partner'));
    },

    /**
     * J1: the partner could not complete the connection (wrong customer id, identity
     * mismatch) or never answered: the consent ends, marked «не выполнено» with the reason.
     */
    async failConnection(
      consentId: string,
      reason: ConnectionFailure,
      actor: 'partner' | 'system',
    ): Promise<Consent | undefined> {
      const consent = await store.get(consentId);
      if (!consent || consent.origin !== 'portal') return undefined;
      const ended = await store.endWithEvent(
        { consentId },
        'revoked',
        event('connection_failed', actor, { reason }),
        announce('consent.revoked'),
        stamp,
      );
      return after('connection.failed', ended);
    },

    /** Fails J1 connections that waited too long for the partner; returns their grants. */
    async failStaleConnections(limit = 100): Promise<string[]> {
      const before = new Date(
        clock.now().getTime() - (deps.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS),
      );
      const grants: string[] = [];
      for (const id of await store.stalePending(before, limit)) {
        const failed = await this.failConnection(id, 'NO_RESPONSE', 'system');
        if (failed?.grantId) grants.push(failed.grantId);
      }
      return grants;
    },

    /**
     * A consent given for one product application ends when the partner closes that
     * application (PRODUCT.md: consent tied to one application): status «Истёк срок», the
     * partner told `consent.expired` like at any end. Returns the consents it ended.
     */
    async endForApplication(clientId: string, applicationRef: string): Promise<Consent[]> {
      const ended: Consent[] = [];
      for (const consentId of await store.liveForApplication(clientId, applicationRef)) {
        const done = await store.endWithEvent(
          { consentId },
          'expired',
          event('expired', 'partner', {
            reason: 'application_closed',
            application_ref: applicationRef,
          }),
          announce('consent.expired'),
          stamp,
        );
        if (done) ended.push(done);
        await after('consent.expired', done);
      }
      return ended;
    },

    /**
     * The citizen pauses a consent: every read is refused until it is resumed (the data API
     * wants status active); the partner is told. Tokens stay, so resuming needs no relink.
     */
    async pause(consentId: string, citizenId: string): Promise<Consent | undefined> {
      const consent = await store.get(consentId);
      if (!consent || consent.citizenId !== citizenId) return undefined;
      return after(
        'consent.paused',
        await store.moveWithEvent(
          consentId,
          ['active'],
          'paused',
          event('paused', 'citizen'),
          announce('consent.paused'),
        ),
      );
    },

    /**
     * The portal's security rules pause a consent (an anomaly, e.g. reads far too frequent):
     * like the citizen's pause, the partner is told `consent.paused`, with actor 'security'
     * and the alert in the event. The caller tells the citizen why; the citizen can resume.
     */
    async pauseForSecurity(
      consentId: string,
      details: Record<string, unknown>,
    ): Promise<Consent | undefined> {
      return store.moveWithEvent(
        consentId,
        ['active'],
        'paused',
        event('paused', 'security', details),
        announce('consent.paused'),
      );
    },

    async resume(consentId: string, citizenId: string): Promise<Consent | undefined> {
      const consent = await store.get(consentId);
      if (!consent || consent.citizenId !== citizenId) return undefined;
      if (consent.expiresAt.getTime() <= clock.now().getTime()) return undefined;
      return after(
        'consent.resumed',
        await store.moveWithEvent(
          consentId,
          ['paused'],
          'active',
          event('resumed', 'citizen'),
          announce('consent.resumed'),
        ),
      );
    },

    /**
     * Flags ended consents whose partner has not sent a deletion receipt by the deadline:
     * the timeline shows it and the citizen is told. Each consent is flagged once.
     */
    async flagOverdueDeletions(limit = 100): Promise<Consent[]> {
      const before = new Date(
        clock.now().getTime() - (deps.deletionDeadlineMs ?? DELETION_DEADLINE_MS),
      );
      const flagged: Consent[] = [];
      for (const consent of await store.deletionOverdue(before, limit)) {
        await store.addEvent({ ...event('deletion_overdue', 'system'), consentId: consent.id });
        flagged.push(consent);
        await after('deletion.overdue', consent);
      }
      return flagged;
    },

    get: (id: string) => store.get(id),
    /** For the data API: waits for an uncommitted change of the consent (no stale reads). */
    getForRead: (id: string) => store.getForRead(id),
    listForCitizen: (citizenId: string) => store.listForCitizen(citizenId),
    events: (consentId: string) => store.events(consentId),
  };
}

export type ConsentService = ReturnType<typeof createConsentService>;

/** What the citizen is told about (SMS or e-mail, after the change has committed). */
export type ConsentNotice = ConsentEventName | 'connection.failed' | 'deletion.overdue';
