import { sql, type Kysely } from 'kysely';
import type {
  Consent,
  ConsentOrigin,
  ConsentAction,
  ConsentEvent,
  ConsentStatus,
  ConsentType,
} from './consent.js';

export interface ConsentTable {
  id: string;
  citizen_id: string;
  client_id: string;
  grant_id: string | null;
  type: ConsentType;
  purposes: string[];
  actions: ConsentAction[];
  scopes: string[];
  application_ref: string | null;
  origin: ConsentOrigin;
  client_ref: string | null;
  status: ConsentStatus;
  granted_at: Date | null;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
}

export interface ConsentEventTable {
  id: string;
  consent_id: string;
  type: string;
  at: Date;
  actor: string;
  details: Record<string, unknown>;
}

/** Work done in the same transaction as a consent change (e.g. the webhook outbox). */
export type InTransaction = (trx: Kysely<ConsentTables>, consent: Consent) => Promise<void>;

export interface ConsentTables {
  consents: ConsentTable;
  consent_events: ConsentEventTable;
}

export async function createConsentTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table consents (
      id text primary key,
      citizen_id text not null references citizens (id),
      client_id text not null,
      grant_id text unique,
      type text not null,
      purposes jsonb not null,
      actions jsonb not null,
      scopes text[] not null,
      application_ref text,
      status text not null check (status in ('pending', 'active', 'paused', 'revoked', 'expired')),
      granted_at timestamptz,
      expires_at timestamptz not null,
      created_at timestamptz not null,
      updated_at timestamptz not null
    )`.execute(db);
  await sql`create index consents_citizen_idx on consents (citizen_id, created_at desc)`.execute(
    db,
  );
  await sql`
    create table consent_events (
      id text primary key,
      consent_id text not null references consents (id),
      type text not null,
      at timestamptz not null,
      actor text not null,
      details jsonb not null default '{}'::jsonb
    )`.execute(db);
  await sql`create index consent_events_consent_idx on consent_events (consent_id, at)`.execute(db);
}

/** J1: consents the citizen starts on the portal carry who started them and their bank id. */
export async function addConsentOrigin(db: Kysely<never>): Promise<void> {
  await sql`
    alter table consents
      add column origin text not null default 'partner' check (origin in ('partner', 'portal')),
      add column client_ref text`.execute(db);
  await sql`create index consents_pending_idx on consents (created_at) where status = 'pending'`.execute(
    db,
  );
}

const toConsent = (r: ConsentTable): Consent => ({
  id: r.id,
  citizenId: r.citizen_id,
  clientId: r.client_id,
  grantId: r.grant_id,
  type: r.type,
  purposes: r.purposes,
  actions: r.actions,
  scopes: r.scopes,
  applicationRef: r.application_ref,
  origin: r.origin,
  clientRefSealed: r.client_ref,
  status: r.status,
  grantedAt: r.granted_at ? new Date(r.granted_at) : null,
  expiresAt: new Date(r.expires_at),
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

async function insertEvent(
  db: Kysely<ConsentTables>,
  event: ConsentEvent & { id: string },
): Promise<void> {
  await db
    .insertInto('consent_events')
    .values({
      id: event.id,
      consent_id: event.consentId,
      type: event.type,
      at: event.at,
      actor: event.actor,
      details: JSON.stringify(event.details) as never,
    })
    .execute();
}

export function createConsentStore(db: Kysely<ConsentTables>) {
  return {
    /** Inserts the consent and its first event in one transaction. */
    async insertWithEvent(
      consent: Consent,
      event: ConsentEvent & { id: string },
      within?: InTransaction,
    ): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('consents')
          .values({
            id: consent.id,
            citizen_id: consent.citizenId,
            client_id: consent.clientId,
            grant_id: consent.grantId,
            type: consent.type,
            purposes: JSON.stringify(consent.purposes) as never,
            actions: JSON.stringify(consent.actions) as never,
            scopes: consent.scopes,
            application_ref: consent.applicationRef,
            origin: consent.origin,
            client_ref: consent.clientRefSealed,
            status: consent.status,
            granted_at: consent.grantedAt,
            expires_at: consent.expiresAt,
            created_at: consent.createdAt,
            updated_at: consent.updatedAt,
          })
          .execute();
        await insertEvent(trx, event);
        await within?.(trx, consent);
      });
    },

    /**
     * Moves a consent from one of `from` to `to` and records why, in one transaction (with
     * `within`, e.g. the webhook outbox); undefined when it was in no state of `from`.
     */
    async moveWithEvent(
      consentId: string,
      from: ConsentStatus[],
      to: ConsentStatus,
      event: Omit<ConsentEvent, 'consentId'> & { id: string },
      within?: InTransaction,
    ): Promise<Consent | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .updateTable('consents')
          .set({ status: to, updated_at: event.at })
          .where('id', '=', consentId)
          .where('status', 'in', from)
          .returningAll()
          .executeTakeFirst();
        if (!row) return undefined;
        await insertEvent(trx, { ...event, consentId: row.id });
        const moved = toConsent(row);
        await within?.(trx, moved);
        return moved;
      });
    },

    /**
     * Moves a consent to a final status and records why, in one transaction; does nothing
     * (and returns undefined) when it is over already.
     */
    async endWithEvent(
      by: { grantId: string } | { consentId: string },
      status: 'revoked' | 'expired',
      event: Omit<ConsentEvent, 'consentId'> & { id: string },
      within?: InTransaction,
      /**
       * Stamps the end once the row is locked: reads wait for this transaction from then
       * on (they take the row FOR SHARE), so no read is served after the recorded time.
       */
      stamp?: () => Date,
    ): Promise<Consent | undefined> {
      return db.transaction().execute(async (trx) => {
        const locked = await trx
          .selectFrom('consents')
          .select('id')
          .where(
            'grantId' in by ? 'grant_id' : 'id',
            '=',
            'grantId' in by ? by.grantId : by.consentId,
          )
          .where('status', 'in', ['pending', 'active', 'paused'])
          .forUpdate()
          .executeTakeFirst();
        if (!locked) return undefined;
        const at = stamp?.() ?? event.at;
        const row = await trx
          .updateTable('consents')
          .set({ status, updated_at: at })
          .where('id', '=', locked.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await insertEvent(trx, { ...event, at, consentId: row.id });
        const ended = toConsent(row);
        await within?.(trx, ended);
        return ended;
      });
    },

    async addEvent(event: ConsentEvent & { id: string }): Promise<void> {
      await insertEvent(db, event);
    },

    async get(id: string): Promise<Consent | undefined> {
      const row = await db
        .selectFrom('consents')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? toConsent(row) : undefined;
    },

    /**
     * The consent as a data read must see it: `FOR SHARE` waits for a revocation that has
     * changed the row but not committed yet, so a read never slips in between the change and
     * its commit (on PostgreSQL a plain read would still see the old, active row).
     */
    async getForRead(id: string): Promise<Consent | undefined> {
      const row = await db
        .selectFrom('consents')
        .selectAll()
        .where('id', '=', id)
        .forShare()
        .executeTakeFirst();
      return row ? toConsent(row) : undefined;
    },

    async findByGrant(grantId: string): Promise<Consent | undefined> {
      const row = await db
        .selectFrom('consents')
        .selectAll()
        .where('grant_id', '=', grantId)
        .executeTakeFirst();
      return row ? toConsent(row) : undefined;
    },

    /** Grants of consents still marked active or paused although their end has passed. */
    async overdue(now: Date, limit: number): Promise<string[]> {
      const rows = await db
        .selectFrom('consents')
        .select('grant_id')
        .where('status', 'in', ['active', 'paused'])
        .where('expires_at', '<=', now)
        .where('grant_id', 'is not', null)
        .limit(limit)
        .execute();
      return rows.map((r) => r.grant_id!);
    },

    /** The partner's live consents tied to one of its product applications. */
    async liveForApplication(clientId: string, applicationRef: string): Promise<string[]> {
      const rows = await db
        .selectFrom('consents')
        .select('id')
        .where('client_id', '=', clientId)
        .where('application_ref', '=', applicationRef)
        .where('status', 'in', ['pending', 'active', 'paused'])
        .execute();
      return rows.map((r) => r.id);
    },

    /** J1 connections the partner never answered: still pending since before `before`. */
    async stalePending(before: Date, limit: number): Promise<string[]> {
      const rows = await db
        .selectFrom('consents')
        .select('id')
        .where('status', '=', 'pending')
        .where('created_at', '<=', before)
        .limit(limit)
        .execute();
      return rows.map((r) => r.id);
    },

    /**
     * Ended consents whose partner has not proved deletion since `before`, and that were
     * not flagged yet: the deadline has passed.
     */
    async deletionOverdue(before: Date, limit: number): Promise<Consent[]> {
      const rows = await db
        .selectFrom('consents')
        .selectAll()
        .where('status', 'in', ['revoked', 'expired'])
        .where('updated_at', '<=', before)
        .where(({ or, and, eb, not, exists, selectFrom }) =>
          and([
            // Only consents under which the partner could have received data.
            or([
              eb('origin', '=', 'partner'),
              exists(
                selectFrom('consent_events')
                  .select('consent_events.id')
                  .whereRef('consent_events.consent_id', '=', 'consents.id')
                  .where('consent_events.type', '=', 'connected'),
              ),
            ]),
            not(
              exists(
                selectFrom('consent_events')
                  .select('consent_events.id')
                  .whereRef('consent_events.consent_id', '=', 'consents.id')
                  .where('consent_events.type', 'in', [
                    'deletion_confirmed',
                    'deletion_overdue',
                    'connection_failed',
                  ]),
              ),
            ),
          ]),
        )
        .limit(limit)
        .execute();
      return rows.map(toConsent);
    },

    async listForCitizen(citizenId: string): Promise<Consent[]> {
      const rows = await db
        .selectFrom('consents')
        .selectAll()
        .where('citizen_id', '=', citizenId)
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map(toConsent);
    },

    async events(consentId: string): Promise<ConsentEvent[]> {
      const rows = await db
        .selectFrom('consent_events')
        .selectAll()
        .where('consent_id', '=', consentId)
        .orderBy('at')
        .execute();
      return rows.map((r) => ({
        consentId: r.consent_id,
        type: r.type as ConsentEvent['type'],
        at: new Date(r.at),
        actor: r.actor,
        details: r.details,
      }));
    },
  };
}

export type ConsentStore = ReturnType<typeof createConsentStore>;
