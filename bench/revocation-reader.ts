/*
 * The partner's reader for the revocation phase (bench/revocation.ts), run as a child
 * process so its loop never shares the event loop of the services it measures. Over one
 * keep-alive mTLS connection it reads the data API with one access token, one request in
 * flight, back to back, until the portal refuses, then a few reads more (a refusal must
 * stay a refusal).
 *
 * IPC, parent → child: `{ type: 'start', url, token }` (one run per revocation), `{ type:
 * 'exit' }`. Child → parent: `{ type: 'reading' }` after the first 200, then `{ type:
 * 'done', reads, refusal }` where each read is [sent, received, status] in epoch
 * milliseconds (Date.now(): the same clock as the portal's timestamps on this machine).
 */
import { Client } from 'undici';
import type { TlsMaterial } from './load.js';

/** [sent at, response at, HTTP status (0 = network error)], epoch ms. */
export type Read = [number, number, number];

export type ReaderCommand = { type: 'start'; url: string; token: string } | { type: 'exit' };

export type ReaderMessage =
  { type: 'reading' } | { type: 'done'; reads: Read[]; refusal: string | undefined };

/** Reads after the first refusal, to see that none is served again. */
const AFTER_REFUSAL = 5;
/** A run that sees no refusal stops by itself. */
const RUN_LIMIT_MS = 10_000;

function send(message: ReaderMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function run(client: Client, url: URL, token: string): Promise<void> {
  const reads: Read[] = [];
  let refusal: string | undefined;
  let afterRefusal = 0;
  let announced = false;
  const started = Date.now();
  while (afterRefusal < AFTER_REFUSAL && Date.now() - started < RUN_LIMIT_MS) {
    const sent = Date.now();
    let status = 0;
    let body = '';
    try {
      const res = await client.request({
        path: url.pathname,
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      });
      status = res.statusCode;
      body = await res.body.text();
    } catch {
      // counted as status 0
    }
    reads.push([sent, Date.now(), status]);
    if (status === 200 && !announced) {
      announced = true;
      await send({ type: 'reading' });
    }
    if (refusal !== undefined) afterRefusal++;
    else if (status !== 200 && status !== 0) {
      try {
        refusal = `${status} ${String((JSON.parse(body) as { code?: unknown }).code)}`;
      } catch {
        refusal = String(status);
      }
    }
  }
  await send({ type: 'done', reads, refusal });
}

function main(): void {
  const tls = JSON.parse(process.env.BENCH_READER_TLS ?? '') as TlsMaterial;
  let client: Client | undefined;
  // The bench is gone (finished, stopped or killed): so is its reader.
  process.on('disconnect', () => process.exit(0));
  process.on('message', (command: ReaderCommand) => {
    if (command.type === 'exit') {
      void (client?.close() ?? Promise.resolve()).finally(() => process.exit(0));
      return;
    }
    const url = new URL(command.url);
    client ??= new Client(url.origin, { connect: { ...tls, servername: 'localhost' } });
    run(client, url, command.token).catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
  });
}

if (process.send) main();
