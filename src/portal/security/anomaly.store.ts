import { sql, type Kysely } from 'kysely';
import type { AnomalyRuleId } from './anomaly-config.js';
import type { Severity, TakenAction } from './anomaly-rules.js';

/**
 * What the anomaly rules remember: alerts (each hit, with what was done), blocks of
 * citizens' logins, the login history the geography and device rules compare with, and
 * the shared per-consent read counters of the frequency rule.
 */
export interface SecurityAlertTable {
  /** Order of arrival; the live view asks for everything after the last one it showed. */
  seq: string;
  id: string;
  at: Date;
  rule: AnomalyRuleId;
  code: string;
  severity: Severity;
  explanation: string;
  summary: string;
  citizen_id: string | null;
  client_id: string | null;
  consent_id: string | null;
  details: Record<string, unknown>;
  actions: TakenAction[];
  /** The client address, sealed (recordAad('security_alerts', id, 'ip')). */
  ip: string | null;
}

export interface SecurityBlockTable {
  id: string;
  citizen_id: string;
  alert_id: string | null;
  blocked_at: Date;
  blocked_until: Date;
  lifted_at: Date | null;
  /** Who lifted it: `security:<analyst id>`. */
  lifted_by: string | null;
}

export interface SecurityLoginTable {
  id: string;
  citizen_id: string;
  at: Date;
  /** Country of the client address (ISO 3166-1 alpha-2); null when not public or unknown. */
  country: string | null;
  /** SHA-256 of the device cookie (platform/login/device.ts); never the cookie itself. */
  device_hash: string | null;
}

export interface SecurityReadCounterTable {
  consent_id: string;
  window_start: Date;
  reads: number;
}

export interface SecurityTables {
  security_alerts: SecurityAlertTable;
  security_blocks: SecurityBlockTable;
  security_logins: SecurityLoginTable;
  security_read_counters: SecurityReadCounterTable;
}

/** Migration 0009_security_alerts (with the TOTP device binding on citizens). */
export async function createSecurityTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table security_alerts (
      seq bigserial primary key,
      id text not null unique,
      at timestamptz not null,
      rule text not null,
      code text not null,
      severity text not null check (severity in ('low', 'medium', 'high')),
      explanation text not null,
      summary text not null,
      citizen_id text,
      client_id text,
      consent_id text,
      details jsonb not null default '{}'::jsonb,
      actions text[] not null default '{}',
      ip text
    )`.execute(db);
  await sql`create index security_alerts_consent_idx on security_alerts (consent_id, rule, at)`.execute(
    db,
  );
  await sql`create index security_alerts_citizen_idx on security_alerts (citizen_id, rule, at)`.execute(
    db,
  );
  await sql`
    create table security_blocks (
      id text primary key,
      citizen_id text not null references citizens (id) on delete cascade,
      alert_id text references security_alerts (id),
      blocked_at timestamptz not null,
      blocked_until timestamptz not null,
      lifted_at timestamptz,
      lifted_by text
    )`.execute(db);
  await sql`create index security_blocks_open_idx on security_blocks (citizen_id) where lifted_at is null`.execute(
    db,
  );
  await sql`
    create table security_logins (
      id text primary key,
      citizen_id text not null references citizens (id) on delete cascade,
      at timestamptz not null,
      country text,
      device_hash text
    )`.execute(db);
  await sql`create index security_logins_citizen_idx on security_logins (citizen_id, at desc)`.execute(
    db,
  );
  await sql`
    create table security_read_counters (
      consent_id text not null,
      window_start timestamptz not null,
      reads integer not null,
      primary key (consent_id, window_start)
    )`.execute(db);
  // The device an authenticator app was enrolled on (SHA-256 of its device cookie).
  await sql`alter table citizens add column totp_device_hash text`.execute(db);
}

export type NewAlert = Omit<SecurityAlertTable, 'seq'>;

export function createAnomalyStore(db: Kysely<SecurityTables>) {
  return {
    /** In the caller's transaction, so the partner's webhook exists iff the alert does. */
    async insertAlert(trx: Kysely<SecurityTables>, alert: NewAlert): Promise<void> {
      await trx
        .insertInto('security_alerts')
        .values({
          ...alert,
          details: JSON.stringify(alert.details) as never,
        } as never)
        .execute();
    },

    /** Whether the rule already fired for this consent (or citizen) since `since`. */
    async firedSince(
      rule: AnomalyRuleId,
      on: { consentId?: string | undefined; citizenId?: string | undefined },
      since: Date,
    ): Promise<boolean> {
      let query = db
        .selectFrom('security_alerts')
        .select('id')
        .where('rule', '=', rule)
        .where('at', '>=', since);
      if (on.consentId) query = query.where('consent_id', '=', on.consentId);
      else if (on.citizenId) query = query.where('citizen_id', '=', on.citizenId);
      else return false;
      return (await query.limit(1).executeTakeFirst()) !== undefined;
    },

    /** Newest first. */
    async recentAlerts(limit = 50): Promise<SecurityAlertTable[]> {
      return db
        .selectFrom('security_alerts')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(limit)
        .execute();
    },

    /** Oldest first: what arrived after the last alert a live view showed. */
    async alertsAfter(seq: string, limit = 100): Promise<SecurityAlertTable[]> {
      return db
        .selectFrom('security_alerts')
        .selectAll()
        .where('seq', '>', sql<string>`cast(${seq} as bigint)`)
        .orderBy('seq', 'asc')
        .limit(limit)
        .execute();
    },

    async lastAlertSeq(): Promise<string> {
      const row = await db
        .selectFrom('security_alerts')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst();
      return row?.seq ? String(row.seq) : '0';
    },

    async insertBlock(trx: Kysely<SecurityTables>, block: SecurityBlockTable): Promise<void> {
      await trx.insertInto('security_blocks').values(block).execute();
    },

    /** The citizen's block in force at `now`, if any. */
    async activeBlock(citizenId: string, now: Date): Promise<SecurityBlockTable | undefined> {
      return db
        .selectFrom('security_blocks')
        .selectAll()
        .where('citizen_id', '=', citizenId)
        .where('lifted_at', 'is', null)
        .where('blocked_until', '>', now)
        .orderBy('blocked_until', 'desc')
        .limit(1)
        .executeTakeFirst();
    },

    /** Blocks in force, newest first, with the alert that caused each. */
    async activeBlocks(now: Date, limit = 200) {
      return db
        .selectFrom('security_blocks as b')
        .leftJoin('security_alerts as a', 'a.id', 'b.alert_id')
        .select([
          'b.id',
          'b.citizen_id',
          'b.blocked_at',
          'b.blocked_until',
          'a.code',
          'a.explanation',
        ])
        .where('b.lifted_at', 'is', null)
        .where('b.blocked_until', '>', now)
        .orderBy('b.blocked_at', 'desc')
        .limit(limit)
        .execute();
    },

    /** Lifts a block in force; its citizen, or undefined when there was none. */
    async liftBlock(id: string, by: string, now: Date): Promise<string | undefined> {
      const row = await db
        .updateTable('security_blocks')
        .set({ lifted_at: now, lifted_by: by })
        .where('id', '=', id)
        .where('lifted_at', 'is', null)
        .where('blocked_until', '>', now)
        .returning('citizen_id')
        .executeTakeFirst();
      return row?.citizen_id;
    },

    async recordLogin(row: SecurityLoginTable): Promise<void> {
      await db.insertInto('security_logins').values(row).execute();
    },

    /** What the geography and device rules compare a new login with. */
    async loginHistory(citizenId: string, deviceHash: string | undefined) {
      const [count, lastWithCountry, device] = await Promise.all([
        db
          .selectFrom('security_logins')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('citizen_id', '=', citizenId)
          .executeTakeFirstOrThrow(),
        db
          .selectFrom('security_logins')
          .select(['country', 'at'])
          .where('citizen_id', '=', citizenId)
          .where('country', 'is not', null)
          .orderBy('at', 'desc')
          .limit(1)
          .executeTakeFirst(),
        deviceHash
          ? db
              .selectFrom('security_logins')
              .select('id')
              .where('citizen_id', '=', citizenId)
              .where('device_hash', '=', deviceHash)
              .limit(1)
              .executeTakeFirst()
          : Promise.resolve(undefined),
      ]);
      return {
        earlierLogins: Number(count.n),
        lastWithCountry: lastWithCountry?.country
          ? { country: lastWithCountry.country, at: new Date(lastWithCountry.at) }
          : undefined,
        deviceSeenBefore: device !== undefined,
      };
    },

    /**
     * Adds this instance's reads to the shared counters in one statement and returns the
     * totals of every instance for those windows.
     */
    async addReads(
      deltas: { consentId: string; windowStart: Date; reads: number }[],
    ): Promise<{ consentId: string; windowStart: Date; reads: number }[]> {
      if (deltas.length === 0) return [];
      const rows = await db
        .insertInto('security_read_counters')
        .values(
          deltas.map((d) => ({
            consent_id: d.consentId,
            window_start: d.windowStart,
            reads: d.reads,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['consent_id', 'window_start']).doUpdateSet({
            reads: sql<number>`security_read_counters.reads + excluded.reads`,
          }),
        )
        .returning(['consent_id', 'window_start', 'reads'])
        .execute();
      return rows.map((r) => ({
        consentId: r.consent_id,
        windowStart: new Date(r.window_start),
        reads: r.reads,
      }));
    },

    /** Read counters older than `countersBefore`, logins older than `loginsBefore`. */
    async sweep(countersBefore: Date, loginsBefore: Date) {
      const counters = await db
        .deleteFrom('security_read_counters')
        .where('window_start', '<', countersBefore)
        .executeTakeFirst();
      const logins = await db
        .deleteFrom('security_logins')
        .where('at', '<', loginsBefore)
        .executeTakeFirst();
      return {
        securityReadCounters: Number(counters.numDeletedRows),
        securityLogins: Number(logins.numDeletedRows),
      };
    },
  };
}

export type AnomalyStore = ReturnType<typeof createAnomalyStore>;
