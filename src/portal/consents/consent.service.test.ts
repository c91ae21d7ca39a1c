import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../../platform/clock.js';
import { migrateToLatest } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import { randomIds } from '../../platform/ids.js';
import { isKnownScope } from '../data-api/scope-catalog.js';
import type { PortalDB } from '../db.js';
import { portalMigrations } from '../migrations.js';
import type { ConsentRequest } from './consent.js';
import {
  createConsentService,
  parseConsentRequest,
  type ConsentService,
} from './consent.service.js';
import { createConsentStore } from './consent.store.js';

const DAY_MS = 24 * 60 * 60_000;
const REQUESTED = ['openid', 'fullname', 'birthdate', 'snils', 'contacts'];

const detail = (overrides: Record<string, unknown> = {}) => [
  {
    type: 'soglasie_consent',
    sysname: 'CREDIT',
    purposes: ['Рассмотрение заявки на кредит'],
    actions: ['READ'],
    scopes: ['fullname', 'snils', 'contacts'],
    optional_scopes: ['contacts'],
    duration_days: 30,
    application_ref: 'APP-2026-0001',
    ...overrides,
  },
];

function refusal(authorizationDetails: unknown, scopes: string[] = REQUESTED): AppError {
  try {
    parseConsentRequest(authorizationDetails, scopes, isKnownScope);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected parseConsentRequest to refuse');
}

describe('parseConsentRequest', () => {
  it('without authorization_details asks for identification: fullname required, the rest optional', () => {
    const request = parseConsentRequest(
      undefined,
      ['openid', 'fullname', 'birthdate', 'contacts', 'offline_access'],
      isKnownScope,
    );
    expect(request).toEqual({
      type: 'IDENTIFICATION',
      purposes: ['Идентификация клиента'],
      actions: ['READ_AND_STORE'],
      scopes: ['fullname', 'birthdate', 'contacts'],
      optionalScopes: ['birthdate', 'contacts'],
      durationDays: 90,
    });
  });

  it('ignores authorization_details entries of other types', () => {
    const request = parseConsentRequest(
      [{ type: 'payment_initiation', sysname: 'CREDIT' }],
      ['openid', 'fullname'],
      isKnownScope,
    );
    expect(request.type).toBe('IDENTIFICATION');
    expect(request.scopes).toEqual(['fullname']);
  });

  it('reads a valid soglasie_consent entry', () => {
    const request = parseConsentRequest(detail(), REQUESTED, isKnownScope);
    expect(request).toEqual({
      type: 'CREDIT',
      purposes: ['Рассмотрение заявки на кредит'],
      actions: ['READ'],
      scopes: ['fullname', 'snils', 'contacts'],
      optionalScopes: ['contacts'],
      durationDays: 30,
      applicationRef: 'APP-2026-0001',
    });
  });

  it('defaults actions, scopes, optional scopes and duration when the entry leaves them out', () => {
    const request = parseConsentRequest(
      [{ type: 'soglasie_consent', sysname: 'DEBIT_CARD', purposes: ['Карта'] }],
      ['openid', 'fullname', 'birthdate'],
      isKnownScope,
    );
    expect(request).toMatchObject({
      type: 'DEBIT_CARD',
      actions: ['READ_AND_STORE'],
      scopes: ['fullname', 'birthdate'],
      optionalScopes: [],
      durationDays: 90,
    });
    expect(request.applicationRef).toBeUndefined();
  });

  it('accepts the boundary durations 1 and 365 days', () => {
    for (const days of [1, 365]) {
      expect(
        parseConsentRequest(detail({ duration_days: days }), REQUESTED, isKnownScope).durationDays,
      ).toBe(days);
    }
  });

  it.each([
    ['an unknown sysname', { sysname: 'MORTGAGE' }],
    ['a missing sysname', { sysname: undefined }],
    ['empty purposes', { purposes: [] }],
    ['purposes that are not a list', { purposes: 'Кредит' }],
    ['an empty purpose', { purposes: [''] }],
    ['an unknown action', { actions: ['DELETE'] }],
    ['an empty action list', { actions: [] }],
    ['an unknown scope', { scopes: ['fullname', 'salary'] }],
    ['an optional scope not among the scopes', { optional_scopes: ['birthdate'] }],
    ['a duration of 0 days', { duration_days: 0 }],
    ['a duration of 366 days', { duration_days: 366 }],
    ['a fractional duration', { duration_days: 1.5 }],
    ['a duration given as a string', { duration_days: '30' }],
    ['an application_ref longer than 64 characters', { application_ref: 'A'.repeat(65) }],
    ['an application_ref that is not a string', { application_ref: 42 }],
  ])('refuses %s with INVALID_AUTHORIZATION_DETAILS', (_what, overrides) => {
    const err = refusal(detail(overrides));
    expect(err.code).toBe('INVALID_AUTHORIZATION_DETAILS');
    expect(err.status).toBe(400);
    expect(err.message).toMatch(/^authorization_details: /);
  });

  it('refuses a scope the scope parameter does not ask for (RFC 9396 must not widen)', () => {
    // birthdate is a known scope, but the partner's scope parameter does not include it.
    const err = refusal(detail({ scopes: ['fullname', 'birthdate'], optional_scopes: [] }), [
      'openid',
      'fullname',
    ]);
    expect(err.code).toBe('INVALID_AUTHORIZATION_DETAILS');
    expect(err.message).toContain('birthdate');
  });

  it('accepts an application_ref of exactly 64 characters', () => {
    const ref = 'A'.repeat(64);
    expect(
      parseConsentRequest(detail({ application_ref: ref }), REQUESTED, isKnownScope).applicationRef,
    ).toBe(ref);
  });
});

describeEachEngine('consent service', (engine) => {
  let database: FreshDatabase<PortalDB>;
  let clock: ReturnType<typeof manualClock>;
  let consents: ConsentService;

  const REQUEST: ConsentRequest = {
    type: 'CREDIT',
    purposes: ['Рассмотрение заявки на кредит'],
    actions: ['READ'],
    scopes: ['fullname', 'snils', 'contacts'],
    optionalScopes: ['snils', 'contacts'],
    durationDays: 30,
    applicationRef: 'APP-1',
  };

  beforeEach(async () => {
    clock = manualClock('2026-12-01T09:00:00Z');
    database = await freshDatabase<PortalDB>(engine);
    await migrateToLatest(database, portalMigrations);
    await sql`
      insert into citizens (id, password_hash, personal, personal_updated_at, created_at)
      values ('citizen-1', 'x', 'sealed', ${clock.now()}, ${clock.now()})`.execute(database.db);
    consents = createConsentService({
      store: createConsentStore(database.db),
      clock,
      ids: randomIds,
    });
  });
  afterEach(async () => {
    await database.close();
  });

  const grant = () =>
    consents.grant({
      citizenId: 'citizen-1',
      clientId: 'partner-bank',
      grantId: 'grant-1',
      request: REQUEST,
      approvedScopes: ['fullname', 'contacts'],
    });

  it('stores an active consent with the approved scopes, ending after its duration', async () => {
    const granted = await grant();
    const stored = await consents.get(granted.id);
    expect(stored).toMatchObject({
      citizenId: 'citizen-1',
      clientId: 'partner-bank',
      grantId: 'grant-1',
      type: 'CREDIT',
      purposes: ['Рассмотрение заявки на кредит'],
      actions: ['READ'],
      scopes: ['fullname', 'contacts'],
      applicationRef: 'APP-1',
      status: 'active',
    });
    expect(stored!.grantedAt!.toISOString()).toBe('2026-12-01T09:00:00.000Z');
    expect(stored!.expiresAt.toISOString()).toBe('2026-12-31T09:00:00.000Z');
    expect(stored!.expiresAt.getTime() - clock.now().getTime()).toBe(30 * DAY_MS);
    expect(await consents.listForCitizen('citizen-1')).toHaveLength(1);
  });

  it("records a 'granted' event by the citizen that lists the declined scopes", async () => {
    const granted = await grant();
    const events = await consents.events(granted.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      consentId: granted.id,
      type: 'granted',
      actor: 'citizen',
      details: { scopes: ['fullname', 'contacts'], declined: ['snils'] },
    });
    expect(events[0]!.at.toISOString()).toBe('2026-12-01T09:00:00.000Z');
  });

  it('activeForGrant returns the consent until its end, and nothing from then on', async () => {
    const granted = await grant();
    expect((await consents.activeForGrant('grant-1'))?.id).toBe(granted.id);

    clock.advance(30 * DAY_MS - 1);
    expect((await consents.activeForGrant('grant-1'))?.id).toBe(granted.id);

    clock.advance(1); // exactly at expiresAt
    expect(await consents.activeForGrant('grant-1')).toBeUndefined();
    clock.advance(DAY_MS);
    expect(await consents.activeForGrant('grant-1')).toBeUndefined();
  });

  it('expires consents past their end, records why, and announces it in the same transaction', async () => {
    const announced: string[] = [];
    consents = createConsentService({
      store: createConsentStore(database.db),
      clock,
      ids: randomIds,
      announce: async (trx, type, consent) => {
        // Proves it runs inside the consent's transaction: it sees the new status.
        const row = await trx
          .selectFrom('consents')
          .select('status')
          .where('id', '=', consent.id)
          .executeTakeFirstOrThrow();
        announced.push(`${type}:${row.status}`);
      },
    });
    const granted = await grant();
    expect(await consents.expireOverdue()).toEqual([]);
    clock.advance(30 * 24 * 60 * 60_000);
    expect(await consents.expireOverdue()).toEqual(['grant-1']);
    expect((await consents.get(granted.id))?.status).toBe('expired');
    expect((await consents.events(granted.id)).map((e) => e.type)).toEqual(['granted', 'expired']);
    expect(announced).toEqual(['consent.granted:active', 'consent.expired:expired']);
    expect(await consents.expireOverdue()).toEqual([]); // once only
  });

  it('a citizen revokes only their own live consent', async () => {
    const granted = await grant();
    expect(await consents.revokeByCitizen(granted.id, 'someone-else')).toBeUndefined();
    expect((await consents.revokeByCitizen(granted.id, 'citizen-1'))?.status).toBe('revoked');
    expect(await consents.revokeByCitizen(granted.id, 'citizen-1')).toBeUndefined();
    expect(await consents.activeForGrant('grant-1')).toBeUndefined();
  });

  const connectFromPortal = (grantId = 'grant-p') =>
    consents.grant({
      citizenId: 'citizen-1',
      clientId: 'partner-bank',
      grantId,
      request: REQUEST,
      approvedScopes: ['fullname'],
      portal: { clientRefSealed: 'sealed-ref' },
    });

  it('J1: a portal-initiated consent waits (pending) until its own partner connects', async () => {
    const pending = await connectFromPortal();
    expect(pending).toMatchObject({ status: 'pending', origin: 'portal' });
    expect(await consents.activeForGrant('grant-p')).toBeUndefined(); // no reads yet
    expect(await consents.connect(pending.id, 'partner-other')).toBeUndefined();
    const active = await consents.connect(pending.id, 'partner-bank');
    expect(active?.status).toBe('active');
    // A retried token request after a lost response still finds it.
    expect((await consents.connect(pending.id, 'partner-bank'))?.status).toBe('active');
    expect((await consents.events(pending.id)).map((e) => e.type)).toEqual([
      'granted',
      'connected',
    ]);
    // A consent the partner started is not open to the consent grant.
    const own = await grant();
    expect(await consents.connect(own.id, 'partner-bank')).toBeUndefined();
  });

  it('J1: a failed connection ends the consent with its reason; a stale one times out', async () => {
    const wrongId = await connectFromPortal('grant-a');
    const failed = await consents.failConnection(wrongId.id, 'CUSTOMER_NOT_FOUND', 'partner');
    expect(failed?.status).toBe('revoked');
    expect((await consents.events(wrongId.id)).at(-1)).toMatchObject({
      type: 'connection_failed',
      actor: 'partner',
      details: { reason: 'CUSTOMER_NOT_FOUND' },
    });
    expect(await consents.connect(wrongId.id, 'partner-bank')).toBeUndefined();

    const unanswered = await connectFromPortal('grant-b');
    clock.advance(29 * 60_000);
    expect(await consents.failStaleConnections()).toEqual([]);
    clock.advance(60_000);
    expect(await consents.failStaleConnections()).toEqual(['grant-b']);
    expect((await consents.events(unanswered.id)).at(-1)?.details).toEqual({
      reason: 'NO_RESPONSE',
    });
  });

  it('pause refuses reads until resume; only the citizen’s own, only from the right state', async () => {
    const announced: string[] = [];
    consents = createConsentService({
      store: createConsentStore(database.db),
      clock,
      ids: randomIds,
      announce: async (_trx, type) => {
        announced.push(type);
      },
    });
    const granted = await grant();
    expect(await consents.pause(granted.id, 'someone-else')).toBeUndefined();
    expect((await consents.pause(granted.id, 'citizen-1'))?.status).toBe('paused');
    expect(await consents.pause(granted.id, 'citizen-1')).toBeUndefined();
    expect(await consents.activeForGrant('grant-1')).toBeUndefined();
    expect((await consents.resume(granted.id, 'citizen-1'))?.status).toBe('active');
    expect((await consents.activeForGrant('grant-1'))?.id).toBe(granted.id);
    expect(announced).toEqual(['consent.granted', 'consent.paused', 'consent.resumed']);
    // Past its end a paused consent cannot come back.
    await consents.pause(granted.id, 'citizen-1');
    clock.advance(31 * DAY_MS);
    expect(await consents.resume(granted.id, 'citizen-1')).toBeUndefined();
  });

  it('a consent tied to an application ends with it, and only that partner’s', async () => {
    const granted = await grant(); // APP-1
    expect(await consents.endForApplication('partner-other', 'APP-1')).toEqual([]);
    expect(await consents.endForApplication('partner-bank', 'APP-2')).toEqual([]);
    const ended = await consents.endForApplication('partner-bank', 'APP-1');
    expect(ended.map((c) => [c.id, c.status])).toEqual([[granted.id, 'expired']]);
    expect((await consents.events(granted.id)).at(-1)).toMatchObject({
      type: 'expired',
      actor: 'partner',
      details: { reason: 'application_closed', application_ref: 'APP-1' },
    });
  });

  it('flags an ended consent without a deletion receipt once, after the deadline', async () => {
    const told: string[] = [];
    consents = createConsentService({
      store: createConsentStore(database.db),
      clock,
      ids: randomIds,
      afterChange: async (type) => {
        told.push(type);
      },
    });
    const revoked = await grant();
    await consents.revokeByCitizen(revoked.id, 'citizen-1');
    const proven = await consents.grant({
      citizenId: 'citizen-1',
      clientId: 'partner-bank',
      grantId: 'grant-2',
      request: REQUEST,
      approvedScopes: ['fullname'],
    });
    await consents.revokeByCitizen(proven.id, 'citizen-1');
    await consents.recordDeletion((await consents.get(proven.id))!, {
      jws: 'x',
      deleted: ['fullname'],
      deletedAt: clock.now().toISOString(),
    });
    // A J1 connection the partner never took never reached it: nothing to delete.
    const neverConnected = await connectFromPortal();
    await consents.revokeByCitizen(neverConnected.id, 'citizen-1');

    clock.advance(24 * 60 * 60_000 - 1);
    expect(await consents.flagOverdueDeletions()).toEqual([]);
    clock.advance(1);
    expect((await consents.flagOverdueDeletions()).map((c) => c.id)).toEqual([revoked.id]);
    expect(await consents.flagOverdueDeletions()).toEqual([]); // once
    expect((await consents.events(revoked.id)).at(-1)?.type).toBe('deletion_overdue');
    expect(told.filter((t) => t === 'deletion.overdue')).toHaveLength(1);
  });

  it('activeForGrant returns nothing for an unknown grant', async () => {
    await grant();
    expect(await consents.activeForGrant('grant-unknown')).toBeUndefined();
  });

  it('activeForGrant returns nothing for a consent that is no longer active', async () => {
    const granted = await grant();
    await database.db
      .updateTable('consents')
      .set({ status: 'revoked' })
      .where('id', '=', granted.id)
      .execute();
    expect(await consents.activeForGrant('grant-1')).toBeUndefined();
  });
});

describe('parseConsentRequest regression: names inherited from Object.prototype', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'refuses sysname %s and the action of the same name',
    (name) => {
      const detail = (extra: Record<string, unknown>) => [
        { type: 'soglasie_consent', purposes: ['x'], scopes: ['fullname'], ...extra },
      ];
      expect(() =>
        parseConsentRequest(detail({ sysname: name }), ['openid', 'fullname'], isKnownScope),
      ).toThrow(/sysname/);
      expect(() =>
        parseConsentRequest(
          detail({ sysname: 'CREDIT', actions: [name] }),
          ['openid', 'fullname'],
          isKnownScope,
        ),
      ).toThrow(/unknown action/);
    },
  );
});
