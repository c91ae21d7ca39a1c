import { sql, type Kysely } from 'kysely';
import type {
  Consent,
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
     * Moves a consent to a final status and records why, in one transaction; does nothing
     * (and returns undefined) when it is not active or paused any more.
     */
    async endWithEvent(
      by: { grantId: string } | { consentId: string },
      status: 'revoked' | 'expired',
      event: Omit<ConsentEvent, 'consentId'> & { id: string },
      within?: InTransaction,
    ): Promise<Consent | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .updateTable('consents')
          .set({ status, updated_at: event.at })
          .where(
            'grantId' in by ? 'grant_id' : 'id',
            '=',
            'grantId' in by ? by.grantId : by.consentId,
          )
          .where('status', 'in', ['active', 'paused'])
          .returningAll()
          .executeTakeFirst();
        if (!row) return undefined;
        await insertEvent(trx, { ...event, consentId: row.id });
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
