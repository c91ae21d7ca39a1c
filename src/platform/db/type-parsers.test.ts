import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';

// The same query must give the same JavaScript values on both engines.
describeEachEngine('column types', (engine) => {
  let database: FreshDatabase<unknown>;
  beforeAll(async () => {
    database = await freshDatabase(engine);
  });
  afterAll(async () => {
    await database.close();
  });

  it('come back as the same JavaScript values', async () => {
    const { rows } = await sql`
      select
        42::int2 as int2, 42::int4 as int4, 9007199254740993::int8 as int8, 1.5::float8 as float8,
        12345678901234567890.12::numeric as numeric, true as bool, 'tekst'::text as text,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as uuid,
        '{"a":[1,2]}'::jsonb as jsonb, '{"b":null}'::json as json,
        '2026-12-01 09:00:00.123+03'::timestamptz as timestamptz,
        '2026-12-01 09:00:00'::timestamp as timestamp, '2026-12-01'::date as date,
        '09:30:00'::time as time, '1 day 02:00:00'::interval as interval, '\\x01ff'::bytea as bytea,
        array[1, 2]::int4[] as int4s, array[1, 2]::int8[] as int8s, array[1.5]::numeric[] as numerics,
        array['a', null]::text[] as texts, array['2026-12-01']::date[] as dates,
        array['\\x01'::bytea] as byteas, null::int8 as nothing
    `.execute(database.db);

    expect(rows[0]).toEqual({
      int2: 42,
      int4: 42,
      int8: '9007199254740993',
      float8: 1.5,
      numeric: '12345678901234567890.12',
      bool: true,
      text: 'tekst',
      uuid: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      jsonb: { a: [1, 2] },
      json: { b: null },
      timestamptz: new Date('2026-12-01T06:00:00.123Z'),
      timestamp: '2026-12-01 09:00:00',
      date: '2026-12-01',
      time: '09:30:00',
      interval: '1 day 02:00:00',
      bytea: Buffer.from([0x01, 0xff]),
      int4s: [1, 2],
      int8s: ['1', '2'],
      numerics: ['1.5'],
      texts: ['a', null],
      dates: ['2026-12-01'],
      byteas: [Buffer.from([0x01])],
      nothing: null,
    });
    const row = rows[0] as { bytea: unknown };
    expect(Buffer.isBuffer(row.bytea)).toBe(true);
  });

  it('accept the same JavaScript parameters', async () => {
    const at = new Date('2026-12-01T06:00:00.123Z');
    const { rows } = await sql<{ at: Date; big: string; doc: unknown; bin: Buffer; day: string }>`
      select ${at}::timestamptz as at, ${123n}::int8 as big, ${JSON.stringify({ x: [1] })}::jsonb as doc,
             ${Buffer.from([7, 8])}::bytea as bin, ${'2026-12-01'}::date as day
    `.execute(database.db);
    expect(rows[0]).toEqual({
      at,
      big: '123',
      doc: { x: [1] },
      bin: Buffer.from([7, 8]),
      day: '2026-12-01',
    });
  });
});
