import { sql, type Kysely } from 'kysely';
import { inTransaction } from '../../platform/db/index.js';

/**
 * Storage for oidc-provider's models (sessions, interactions, grants, codes, tokens, PAR
 * requests) and for the portal's token signing keys. The payloads hold ids and protocol
 * parameters, never personal data values.
 */
export interface OidcPayloadTable {
  model: string;
  id: string;
  payload: Record<string, unknown>;
  grant_id: string | null;
  user_code: string | null;
  uid: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
}

export interface OidcKeyTable {
  kid: string;
  alg: string;
  /** Sealed private JWK. */
  private_jwk: string;
  public_jwk: Record<string, unknown>;
  state: 'current' | 'next' | 'retired';
  created_at: Date;
  /** When a running portal first put it in its JWKS (docs/keys.md). */
  published_at?: Date | null;
  /** `soglasie keys rotate` asked for this next key to become current. */
  promote_requested_at?: Date | null;
  promoted_at?: Date | null;
  retired_at?: Date | null;
  /** A retired key is published (and accepted) until then, for tokens it signed. */
  publish_until?: Date | null;
}

export interface OidcTables {
  oidc_payloads: OidcPayloadTable;
  oidc_keys: OidcKeyTable;
}

export async function createOidcTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table oidc_payloads (
      model text not null,
      id text not null,
      payload jsonb not null,
      grant_id text,
      user_code text,
      uid text,
      expires_at timestamptz,
      consumed_at timestamptz,
      primary key (model, id)
    )`.execute(db);
  await sql`create index oidc_payloads_grant_idx on oidc_payloads (grant_id)`.execute(db);
  await sql`create index oidc_payloads_uid_idx on oidc_payloads (uid)`.execute(db);
  await sql`create index oidc_payloads_expiry_idx on oidc_payloads (expires_at)`.execute(db);
  await sql`
    create table oidc_keys (
      kid text primary key,
      alg text not null,
      private_jwk text not null,
      public_jwk jsonb not null,
      state text not null check (state in ('current', 'next', 'retired')),
      created_at timestamptz not null
    )`.execute(db);
  // At most one current and one next key, even when two instances start at once.
  await sql`create unique index oidc_keys_one_per_state on oidc_keys (state) where state <> 'retired'`.execute(
    db,
  );
}

/** Migration 0010: the lifecycle of signing keys (next → current → retired). */
export async function addSigningKeyLifecycle(db: Kysely<never>): Promise<void> {
  await sql`
    alter table oidc_keys
      add column published_at timestamptz,
      add column promote_requested_at timestamptz,
      add column promoted_at timestamptz,
      add column retired_at timestamptz,
      add column publish_until timestamptz`.execute(db);
  // Until now every key was in the JWKS from the start.
  await sql`update oidc_keys set published_at = created_at`.execute(db);
}

export function createOidcStore(db: Kysely<OidcTables>) {
  return {
    async upsert(row: OidcPayloadTable): Promise<void> {
      await db
        .insertInto('oidc_payloads')
        .values({ ...row, payload: JSON.stringify(row.payload) as never })
        .onConflict((oc) =>
          oc.columns(['model', 'id']).doUpdateSet({
            payload: JSON.stringify(row.payload) as never,
            grant_id: row.grant_id,
            user_code: row.user_code,
            uid: row.uid,
            expires_at: row.expires_at,
          }),
        )
        .execute();
    },

    async find(
      model: string,
      by: { id?: string; uid?: string; userCode?: string },
      now: Date,
    ): Promise<OidcPayloadTable | undefined> {
      let query = db.selectFrom('oidc_payloads').selectAll().where('model', '=', model);
      if (by.id !== undefined) query = query.where('id', '=', by.id);
      if (by.uid !== undefined) query = query.where('uid', '=', by.uid);
      if (by.userCode !== undefined) query = query.where('user_code', '=', by.userCode);
      const row = await query
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
        .executeTakeFirst();
      return row;
    },

    async consume(model: string, id: string, now: Date): Promise<void> {
      await db
        .updateTable('oidc_payloads')
        .set({ consumed_at: now })
        .where('model', '=', model)
        .where('id', '=', id)
        .execute();
    },

    async destroy(model: string, id: string): Promise<void> {
      await db
        .deleteFrom('oidc_payloads')
        .where('model', '=', model)
        .where('id', '=', id)
        .execute();
    },

    /** Removes everything issued under a grant: codes, access and refresh tokens. */
    async revokeByGrantId(grantId: string): Promise<number> {
      const result = await db
        .deleteFrom('oidc_payloads')
        .where('grant_id', '=', grantId)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** Ends a grant from our side (revocation, expiry): the grant and all it issued. */
    async removeGrant(grantId: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('oidc_payloads').where('grant_id', '=', grantId).execute();
        await trx
          .deleteFrom('oidc_payloads')
          .where('model', '=', 'Grant')
          .where('id', '=', grantId)
          .execute();
      });
    },

    async deleteExpired(now: Date): Promise<number> {
      const result = await db
        .deleteFrom('oidc_payloads')
        .where('expires_at', '<=', now)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    async listKeys(): Promise<OidcKeyTable[]> {
      return db.selectFrom('oidc_keys').selectAll().orderBy('created_at').execute();
    },

    async insertKey(row: OidcKeyTable): Promise<void> {
      await db
        .insertInto('oidc_keys')
        .values({ ...row, public_jwk: JSON.stringify(row.public_jwk) as never })
        .execute();
    },

    async privateKey(kid: string): Promise<string | undefined> {
      const row = await db
        .selectFrom('oidc_keys')
        .select('private_jwk')
        .where('kid', '=', kid)
        .executeTakeFirst();
      return row?.private_jwk;
    },

    /** A serving portal puts its current and next keys in its JWKS from `now` on. */
    async markPublished(now: Date): Promise<number> {
      const result = await db
        .updateTable('oidc_keys')
        .set({ published_at: now })
        .where('published_at', 'is', null)
        .where('state', 'in', ['current', 'next'])
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async requestPromotion(kid: string, now: Date): Promise<void> {
      await db
        .updateTable('oidc_keys')
        .set({ promote_requested_at: now })
        .where('kid', '=', kid)
        .where('state', '=', 'next')
        .where('promote_requested_at', 'is', null)
        .execute();
    },

    /**
     * next → current, current → retired (published until `publishUntil`), and a new next,
     * in one transaction. False (nothing changed) when another instance did it first.
     */
    async promote(input: {
      currentKid: string;
      nextKid: string;
      now: Date;
      publishUntil: Date;
      newNext: OidcKeyTable;
    }): Promise<boolean> {
      const lost = new Error('promoted elsewhere');
      try {
        await inTransaction(db, async (trx) => {
          const retired = await trx
            .updateTable('oidc_keys')
            .set({ state: 'retired', retired_at: input.now, publish_until: input.publishUntil })
            .where('kid', '=', input.currentKid)
            .where('state', '=', 'current')
            .executeTakeFirst();
          if (Number(retired.numUpdatedRows) !== 1) throw lost;
          const promoted = await trx
            .updateTable('oidc_keys')
            .set({ state: 'current', promoted_at: input.now })
            .where('kid', '=', input.nextKid)
            .where('state', '=', 'next')
            .executeTakeFirst();
          if (Number(promoted.numUpdatedRows) !== 1) throw lost;
          await trx
            .insertInto('oidc_keys')
            .values({
              ...input.newNext,
              public_jwk: JSON.stringify(input.newNext.public_jwk) as never,
            })
            .execute();
        });
        return true;
      } catch (err) {
        if (err === lost) return false;
        throw err;
      }
    },

    /** Retired keys past their publication window: nothing verifies with them any more. */
    async deleteRetiredBefore(now: Date): Promise<number> {
      const result = await db
        .deleteFrom('oidc_keys')
        .where('state', '=', 'retired')
        .where((eb) => eb.or([eb('publish_until', 'is', null), eb('publish_until', '<=', now)]))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}

export type OidcStore = ReturnType<typeof createOidcStore>;
