import { sql, type Kysely } from 'kysely';

/**
 * SQL for finding the values wrapped by a key-encryption key anywhere in a service's
 * database, and for replacing one of them without losing a concurrent change.
 *
 * Sealed values carry the KEK version that wrapped their data key (`{"kek": 1, "dk": …}`,
 * see crypto/sealed-format.ts), in text or jsonb columns, sometimes nested in a larger
 * JSON value (a session's data). Rather than keep a list of sealed columns that a new
 * migration could forget, every text and JSON column of every table is looked at; a
 * cheap `like '%kek%'` filter keeps the scan to the rows that can hold one.
 *
 * Rows are addressed by `ctid` (no primary key needed) and read in windows of heap
 * pages, so a pass over a large table reads it once. An update only applies if the row
 * still holds exactly the value that was read (compare-and-set): a row the running
 * service changed meanwhile is left alone and counted, and the next pass sees it.
 */

export type ColumnType = 'text' | 'jsonb' | 'json';

export interface CandidateColumn {
  table: string;
  column: string;
  type: ColumnType;
}

export interface WindowRow {
  ctid: string;
  /** Column name → its value as text (null when SQL NULL). */
  values: Record<string, string | null>;
}

export interface ServiceKeyRow {
  name: string;
  kek_version: number;
  wrapped: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any table of any service
type AnyDb = Kysely<any>;

const MAYBE_WRAPPED = '%kek%';

function anyCandidate(columns: readonly string[]) {
  return sql.join(
    columns.map((c) => sql`${sql.ref(c)}::text like ${MAYBE_WRAPPED}`),
    sql` or `,
  );
}

const tid = (page: number) => `(${page},0)`;

export function createSealedValueStore(db: AnyDb) {
  return {
    /** Text and JSON columns of the tables in the current schema, by table. */
    async candidateColumns(): Promise<CandidateColumn[]> {
      const { rows } = await sql<{ table: string; column: string; type: ColumnType }>`
        select c.table_name as "table", c.column_name as "column", c.data_type as "type"
        from information_schema.columns c
        join information_schema.tables t
          on t.table_schema = c.table_schema and t.table_name = c.table_name
        where c.table_schema = current_schema()
          and t.table_type = 'BASE TABLE'
          and c.data_type in ('text', 'jsonb', 'json')
        order by c.table_name, c.ordinal_position`.execute(db);
      return rows;
    },

    /** Rows of `table` that may hold a wrapped key in one of `columns`. */
    async countCandidates(table: string, columns: readonly string[]): Promise<number> {
      const { rows } = await sql<{ n: string | number }>`
        select count(*) as n from ${sql.table(table)} where ${anyCandidate(columns)}`.execute(db);
      return Number(rows[0]?.n ?? 0);
    },

    /** Heap pages of the table now (it may grow while it is scanned). */
    async pages(table: string): Promise<number> {
      const { rows } = await sql<{ pages: string | number }>`
        select (pg_relation_size(c.oid) / current_setting('block_size')::bigint) as pages
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relname = ${table}`.execute(db);
      return Number(rows[0]?.pages ?? 0);
    },

    /** The candidate rows stored in heap pages [fromPage, toPage). */
    async window(
      table: string,
      columns: readonly string[],
      fromPage: number,
      toPage: number,
    ): Promise<WindowRow[]> {
      const selected = columns.map((c, i) => sql`${sql.ref(c)}::text as ${sql.id(`v${i}`)}`);
      const { rows } = await sql<Record<string, string | null>>`
        select ctid::text as ctid, ${sql.join(selected)}
        from ${sql.table(table)}
        where ctid >= ${tid(fromPage)}::tid and ctid < ${tid(toPage)}::tid
          and (${anyCandidate(columns)})`.execute(db);
      return rows.map((row) => ({
        ctid: String(row.ctid),
        values: Object.fromEntries(columns.map((c, i) => [c, row[`v${i}`] ?? null])),
      }));
    },

    /**
     * Compare-and-set of one row's values (all its changed columns at once: an update
     * gives the row a new ctid). False when the row changed since it was read.
     */
    async replace(
      trx: AnyDb,
      table: string,
      ctid: string,
      changes: readonly { at: CandidateColumn; oldText: string; newText: string }[],
    ): Promise<boolean> {
      const cast = (c: (typeof changes)[number]) =>
        c.at.type === 'jsonb'
          ? sql`${c.newText}::jsonb`
          : c.at.type === 'json'
            ? sql`${c.newText}::json`
            : sql`${c.newText}`;
      const sets = changes.map((c) => sql`${sql.ref(c.at.column)} = ${cast(c)}`);
      const same = changes.map((c) => sql`${sql.ref(c.at.column)}::text = ${c.oldText}`);
      const result = await sql`
        update ${sql.table(table)} set ${sql.join(sets)}
        where ctid = ${ctid}::tid and ${sql.join(same, sql` and `)}`.execute(trx);
      return Number(result.numAffectedRows ?? 0) === 1;
    },

    /** The platform's service_keys table keeps its version and wrapped key in two columns. */
    async serviceKeys(): Promise<ServiceKeyRow[]> {
      const { rows } = await sql<ServiceKeyRow>`
        select name, kek_version, wrapped from service_keys order by name`.execute(db);
      return rows.map((r) => ({ ...r, kek_version: Number(r.kek_version) }));
    },

    async replaceServiceKey(trx: AnyDb, old: ServiceKeyRow, next: ServiceKeyRow): Promise<boolean> {
      const result = await sql`
        update service_keys set kek_version = ${next.kek_version}, wrapped = ${next.wrapped}
        where name = ${old.name} and kek_version = ${old.kek_version}
          and wrapped = ${old.wrapped}`.execute(trx);
      return Number(result.numAffectedRows ?? 0) === 1;
    },
  };
}

export type SealedValueStore = ReturnType<typeof createSealedValueStore>;
