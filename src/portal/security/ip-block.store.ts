import { sql, type Kysely } from 'kysely';
import { inTransaction } from '../../platform/db/index.js';

/**
 * IP blocks, in the database so that every instance honours them. A row stays as history
 * once it ends: `ended_at` is set when an analyst lifts it, or when a later block of the
 * same address supersedes an expired one. At most one row per address is open.
 *
 * The addresses are those of servers calling the partner API (organizations' hosts), kept
 * in the clear so that the security center can show them; the audit log names a block by
 * its id only.
 */
export interface IpBlockTable {
  id: string;
  ip: string;
  /** Why, in words for the security center. */
  reason: string;
  /** What blocked it, e.g. 'rate_limit'. */
  source: string;
  /** The partner whose requests led to it, when known. */
  client_id: string | null;
  blocked_at: Date;
  blocked_until: Date;
  ended_at: Date | null;
  /** The analyst (citizen id) who lifted it. */
  lifted_by: string | null;
}

export interface IpBlockTables {
  ip_blocks: IpBlockTable;
}

export async function createIpBlockTables(db: Kysely<never>): Promise<void> {
  await sql`
    create table ip_blocks (
      id text primary key,
      ip text not null,
      reason text not null,
      source text not null,
      client_id text,
      blocked_at timestamptz not null,
      blocked_until timestamptz not null,
      ended_at timestamptz,
      lifted_by text,
      check (blocked_until > blocked_at)
    )`.execute(db);
  await sql`create unique index ip_blocks_open_idx on ip_blocks (ip) where ended_at is null`.execute(
    db,
  );
}

export type NewIpBlock = Omit<IpBlockTable, 'ended_at' | 'lifted_by'>;

export function createIpBlockStore(db: Kysely<IpBlockTables>) {
  return {
    /** The open block of `ip` in force at `now`, if any. */
    async activeFor(ip: string, now: Date): Promise<IpBlockTable | undefined> {
      return db
        .selectFrom('ip_blocks')
        .selectAll()
        .where('ip', '=', ip)
        .where('ended_at', 'is', null)
        .where('blocked_until', '>', now)
        .executeTakeFirst();
    },

    /**
     * Opens a block unless one is in force already (another instance may have been
     * quicker): closes an expired open row of the address first, then inserts. Returns
     * the block in force and whether this call created it.
     */
    async open(row: NewIpBlock): Promise<{ block: IpBlockTable; created: boolean }> {
      return inTransaction(db, async (trx) => {
        await trx
          .updateTable('ip_blocks')
          .set((eb) => ({ ended_at: eb.ref('blocked_until') }))
          .where('ip', '=', row.ip)
          .where('ended_at', 'is', null)
          .where('blocked_until', '<=', row.blocked_at)
          .execute();
        const inserted = await trx
          .insertInto('ip_blocks')
          .values({ ...row, ended_at: null, lifted_by: null })
          .onConflict((oc) => oc.column('ip').where('ended_at', 'is', null).doNothing())
          .returningAll()
          .executeTakeFirst();
        if (inserted) return { block: inserted, created: true };
        const existing = await trx
          .selectFrom('ip_blocks')
          .selectAll()
          .where('ip', '=', row.ip)
          .where('ended_at', 'is', null)
          .executeTakeFirstOrThrow();
        return { block: existing, created: false };
      });
    },

    /** Blocks in force at `now`, newest first. */
    async listActive(now: Date, limit = 500): Promise<IpBlockTable[]> {
      return db
        .selectFrom('ip_blocks')
        .selectAll()
        .where('ended_at', 'is', null)
        .where('blocked_until', '>', now)
        .orderBy('blocked_at', 'desc')
        .limit(limit)
        .execute();
    },

    /** Ends a block in force; undefined when it is not (already lifted, or expired). */
    async lift(id: string, by: string, now: Date): Promise<IpBlockTable | undefined> {
      return db
        .updateTable('ip_blocks')
        .set({ ended_at: now, lifted_by: by })
        .where('id', '=', id)
        .where('ended_at', 'is', null)
        .where('blocked_until', '>', now)
        .returningAll()
        .executeTakeFirst();
    },
  };
}

export type IpBlockStore = ReturnType<typeof createIpBlockStore>;
