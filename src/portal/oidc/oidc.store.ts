import { sql, type Kysely } from 'kysely';

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
  };
}

export type OidcStore = ReturnType<typeof createOidcStore>;
