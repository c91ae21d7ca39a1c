import type { Clock } from '../../platform/clock.js';
import { BadRequestError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import {
  CONSENT_ACTIONS,
  CONSENT_DETAIL_TYPE,
  CONSENT_TYPES,
  type Consent,
  type ConsentAction,
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
export type ConsentAnnouncer = (
  trx: Kysely<ConsentTables>,
  type: 'consent.granted' | 'consent.revoked' | 'consent.expired',
  consent: Consent,
) => Promise<void>;

export function createConsentService(deps: {
  store: ConsentStore;
  clock: Clock;
  ids: IdGenerator;
  announce?: ConsentAnnouncer;
  /**
   * After a change has committed: tell the citizen. Its failure is reported, never
   * undoes the change (a lost SMS must not resurrect a revoked consent).
   */
  afterChange?: (type: Parameters<ConsentAnnouncer>[1], consent: Consent) => Promise<void>;
}) {
  const { store, clock, ids } = deps;
  const after = async (type: Parameters<ConsentAnnouncer>[1], consent: Consent | undefined) => {
    if (consent) await deps.afterChange?.(type, consent).catch(() => undefined);
    return consent;
  };
  const announce =
    (type: Parameters<ConsentAnnouncer>[1]) =>
    async (trx: Kysely<ConsentTables>, consent: Consent) =>
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
        status: 'active',
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

    get: (id: string) => store.get(id),
    listForCitizen: (citizenId: string) => store.listForCitizen(citizenId),
    events: (consentId: string) => store.events(consentId),
  };
}

export type ConsentService = ReturnType<typeof createConsentService>;
