import pg from 'pg';
import type { CustomTypesConfig } from 'pg';

/**
 * How column values come back to JavaScript, made the same on PGlite and node-postgres.
 * Left alone, the two drivers disagree (PGlite returns int8 as number or bigint, pg as
 * string; `date` becomes a Date at UTC midnight on one and local midnight on the other;
 * `interval` a string on one and an object on the other; `numeric[]` strings or floats).
 *
 * The policy, on both engines:
 * - int8 / bigint, numeric: string (exact; convert with BigInt() where needed)
 * - int2, int4, float4, float8: number; bool: boolean; json, jsonb: parsed value
 * - timestamptz: Date (an instant; the right type for points in time)
 * - date, timestamp (without time zone), time, interval: the PostgreSQL text, unchanged
 *   (they carry no zone, so turning them into a Date would invent one)
 * - bytea: Buffer
 * - arrays of these: arrays of the same
 *
 * Parameters: pass json/jsonb values as JSON.stringify(value). (node-postgres turns a JS
 * array parameter into a PostgreSQL array literal, PGlite into JSON, so a bare array
 * behaves differently.) Pass dates as 'YYYY-MM-DD' strings and instants as Date.
 */

const OID = {
  BYTEA: 17,
  INT8: 20,
  DATE: 1082,
  TIME: 1083,
  TIMESTAMP: 1114,
  INTERVAL: 1186,
  NUMERIC: 1700,
  BYTEA_ARRAY: 1001,
  TEXT_ARRAY: 1009,
  INT8_ARRAY: 1016,
  TIMESTAMP_ARRAY: 1115,
  DATE_ARRAY: 1182,
  TIME_ARRAY: 1183,
  INTERVAL_ARRAY: 1187,
  NUMERIC_ARRAY: 1231,
} as const;

const asText = (value: string): string => value;

function parseBytea(value: string): Buffer {
  // bytea_output = hex is the default on both engines, and we never change it.
  if (!value.startsWith('\\x')) {
    throw new Error('bytea values must arrive in hex format (bytea_output = hex)');
  }
  return Buffer.from(value.slice(2), 'hex');
}

/**
 * Parsers for PGlite's `parsers` option. PGlite applies these to array elements too,
 * so arrays follow automatically.
 */
export const pgliteParsers: Record<number, (value: string) => unknown> = {
  [OID.INT8]: asText,
  [OID.NUMERIC]: asText,
  [OID.DATE]: asText,
  [OID.TIME]: asText,
  [OID.TIMESTAMP]: asText,
  [OID.INTERVAL]: asText,
  [OID.BYTEA]: parseBytea,
};

type Parser = (value: string) => unknown;
const pgParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => Parser;
const textArray = pgParser(OID.TEXT_ARRAY, 'text');

/** Overrides for node-postgres; everything else keeps pg's own parser. */
const pgOverrides: Record<number, Parser> = {
  [OID.DATE]: asText,
  [OID.TIME]: asText,
  [OID.TIMESTAMP]: asText,
  [OID.INTERVAL]: asText,
  [OID.DATE_ARRAY]: textArray,
  [OID.TIME_ARRAY]: textArray,
  [OID.TIMESTAMP_ARRAY]: textArray,
  [OID.INTERVAL_ARRAY]: textArray,
  [OID.NUMERIC_ARRAY]: textArray,
  // pg's defaults already match the policy for these; pinned so a global change elsewhere
  // (pg.types.setTypeParser) cannot make the engines diverge.
  [OID.INT8]: asText,
  [OID.NUMERIC]: asText,
  [OID.INT8_ARRAY]: textArray,
};

/** The `types` option for a pg Pool/Client. */
export const pgTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (format !== 'binary') {
      const override = pgOverrides[oid];
      if (override) return override;
    }
    return pgParser(oid, format);
  }) as CustomTypesConfig['getTypeParser'],
};
