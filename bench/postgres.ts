import { randomBytes } from 'node:crypto';
import pg from 'pg';

const PREFIX = 'soglasie_bench_';

/**
 * An empty database on the PostgreSQL server behind `adminUrl`, for one bench run;
 * drop() removes it (and only it: the name is ours and was created here).
 */
export async function createBenchDatabase(
  adminUrl: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${PREFIX}${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`create database ${name} template template0`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    url: url.toString(),
    drop: () =>
      (dropping ??= withClient(adminUrl, (c) =>
        c.query(`drop database if exists ${name} with (force)`),
      ).then(() => undefined)),
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
