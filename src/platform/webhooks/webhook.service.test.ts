import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { createSealer, memoryKeyring, parseSealed, recordAad } from '../crypto/index.js';
import { inTransaction, openDatabase, type Database } from '../db/index.js';
import { randomIds } from '../ids.js';
import {
  CLAIM_LEASE_MS,
  RETRY_SCHEDULE_MS,
  WebhookError,
  createWebhookTables,
  createWebhooks,
  type JsonValue,
  type WebhookDeps,
  type WebhookTables,
  type Webhooks,
} from './index.js';

/** A domain table beside the outbox, to show both commit or roll back together. */
type TestDB = WebhookTables & { things: { id: string } };

interface Delivery {
  path: string;
  headers: Record<string, string>;
  body: string;
}

type Reply = number | 'hang';

interface Receiver {
  url: string;
  port: number;
  deliveries: Delivery[];
  close(): Promise<void>;
}

/**
 * A receiver as a partner would run it: plain node:http on 127.0.0.1. It answers with
 * `replies` in order, then 200; 'hang' never answers; 3xx redirects to /elsewhere.
 */
async function startReceiver(
  opts: { replies?: Reply[]; port?: number; delayMs?: number } = {},
): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const replies = [...(opts.replies ?? [])];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({
        path: req.url ?? '',
        headers: Object.fromEntries(
          Object.entries(req.headers).map(([name, value]) => [name, String(value)]),
        ),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      const reply = replies.shift() ?? 200;
      if (reply === 'hang') return;
      setTimeout(() => {
        if (reply >= 300 && reply < 400) res.writeHead(reply, { location: '/elsewhere' }).end();
        else res.writeHead(reply).end();
      }, opts.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}

describeEachEngine('webhooks', (engine) => {
  let database: FreshDatabase<TestDB>;
  let clock: ReturnType<typeof manualClock>;
  let webhooks: Webhooks;
  const sealer = createSealer(memoryKeyring());
  const receivers: Receiver[] = [];

  const make = (overrides: Partial<WebhookDeps> = {}) =>
    createWebhooks({
      db: database.db,
      sealer,
      clock,
      ids: randomIds,
      allowPrivateUrls: true,
      timeoutMs: 300,
      ...overrides,
    });

  const receiver = async (opts: Parameters<typeof startReceiver>[0] = {}) => {
    const r = await startReceiver(opts);
    receivers.push(r);
    return r;
  };

  const enqueue = (owner: string, eventType: string, payload: JsonValue) =>
    inTransaction(database.db, (trx) => webhooks.enqueue(trx, owner, eventType, payload));

  const message = (id: string) =>
    database.db
      .selectFrom('webhook_messages')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  beforeEach(async () => {
    database = await freshDatabase<TestDB>(engine);
    await createWebhookTables(database.db as unknown as Kysely<never>);
    await sql`create table things (id text primary key)`.execute(database.db);
    // Frozen, but at the real time: receivers check webhook-timestamp against their own
    // clock (Standard Webhooks allows ±5 minutes).
    clock = manualClock(new Date());
    webhooks = make();
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
    await database.close();
  });

  it('delivers a signed envelope that a Standard Webhooks receiver verifies', async () => {
    const r = await receiver();
    const { secret } = await webhooks.registerEndpoint('bank', r.url);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/); // 32 random bytes
    const other = await webhooks.registerEndpoint('someone-else', r.url);
    const enqueuedAt = clock.now();
    const [id] = await enqueue('bank', 'consent.revoked', { consentId: 'c-1', scopes: ['a'] });
    clock.advance(1_500);

    expect(await webhooks.deliverDue()).toEqual({
      claimed: 1,
      delivered: 1,
      retrying: 0,
      dead: 0,
      lost: 0,
    });
    expect(r.deliveries).toHaveLength(1);
    const { headers, body, path } = r.deliveries[0]!;
    const envelope = {
      type: 'consent.revoked',
      timestamp: enqueuedAt.toISOString(),
      data: { consentId: 'c-1', scopes: ['a'] },
    };
    expect(path).toBe('/hook');
    expect(headers['content-type']).toBe('application/json');
    expect(headers['webhook-id']).toBe(id);
    expect(id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(headers['webhook-timestamp']).toBe(String(Math.floor(clock.now().getTime() / 1000)));
    expect(new Webhook(secret).verify(body, headers)).toEqual(envelope);
    expect(JSON.parse(body)).toEqual(envelope);
    // The signature really binds secret, body and headers.
    expect(() => new Webhook(other.secret).verify(body, headers)).toThrow(/signature/);
    expect(() => new Webhook(secret).verify(body.replace('c-1', 'c-2'), headers)).toThrow();
    expect(() =>
      new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_other' }),
    ).toThrow();

    expect(await message(id!)).toMatchObject({
      status: 'delivered',
      attempts: 1,
      last_status: 200,
      last_error: null,
      delivered_at: clock.now(),
    });
    expect((await webhooks.deliverDue()).claimed).toBe(0);
    expect(r.deliveries).toHaveLength(1);
    // Who received what, and when: for the citizen's revocation timeline.
    expect(await webhooks.firstDelivery('bank', 'consent.revoked', 'consentId', 'c-1')).toEqual(
      clock.now(),
    );
    expect(
      await webhooks.firstDelivery('bank', 'consent.revoked', 'consentId', 'c-2'),
    ).toBeUndefined();
    expect(
      await webhooks.firstDelivery('someone-else', 'consent.revoked', 'consentId', 'c-1'),
    ).toBeUndefined();
  });

  it('writes messages in the caller’s transaction: a rollback leaves none', async () => {
    const r1 = await receiver();
    const r2 = await receiver();
    await webhooks.registerEndpoint('bank', r1.url);
    await webhooks.registerEndpoint('bank', r2.url);
    await webhooks.registerEndpoint('someone-else', r1.url);

    await expect(
      inTransaction(database.db, async (trx) => {
        await trx.insertInto('things').values({ id: 't1' }).execute();
        expect(await webhooks.enqueue(trx, 'bank', 'thing.created', { id: 't1' })).toHaveLength(2);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    expect(await database.db.selectFrom('webhook_messages').selectAll().execute()).toEqual([]);
    expect((await webhooks.deliverDue()).claimed).toBe(0);

    const ids = await inTransaction(database.db, async (trx) => {
      await trx.insertInto('things').values({ id: 't2' }).execute();
      return webhooks.enqueue(trx, 'bank', 'thing.created', { id: 't2' });
    });
    const rows = await database.db.selectFrom('webhook_messages').select('id').execute();
    expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort());
    expect(ids).toHaveLength(2); // one per endpoint of 'bank', none for 'someone-else'

    // Outside a transaction, enqueue cannot promise the event matches a committed change.
    await expect(webhooks.enqueue(database.db, 'bank', 'thing.created', {})).rejects.toThrow(
      TypeError,
    );

    expect((await webhooks.deliverDue()).delivered).toBe(2);
    expect(r1.deliveries.map((d) => JSON.parse(d.body).data)).toEqual([{ id: 't2' }]);
    expect(r2.deliveries.map((d) => JSON.parse(d.body).data)).toEqual([{ id: 't2' }]);
  });

  it('retries after 5 s when the receiver answers 500, counting attempts', async () => {
    const r = await receiver({ replies: [500] });
    const { secret } = await webhooks.registerEndpoint('bank', r.url);
    const [id] = await enqueue('bank', 'thing.changed', { n: 1 });

    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, retrying: 1, delivered: 0 });
    expect(await message(id!)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_status: 500,
      last_error: 'HTTP 500',
      next_attempt_at: new Date(clock.now().getTime() + 5_000),
    });
    clock.advance(4_999);
    expect((await webhooks.deliverDue()).claimed).toBe(0);
    clock.advance(1);
    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, delivered: 1 });

    expect(await message(id!)).toMatchObject({
      status: 'delivered',
      attempts: 2,
      last_status: 200,
    });
    expect(r.deliveries).toHaveLength(2);
    const second = r.deliveries[1]!;
    expect(second.headers['webhook-id']).toBe(id); // same id: the receiver can deduplicate
    expect(new Webhook(secret).verify(second.body, second.headers)).toBeTruthy();
  });

  it('retries a receiver that is down (connection refused)', async () => {
    const down = await receiver();
    const { port } = down;
    await down.close();
    await webhooks.registerEndpoint('bank', down.url);
    const [id] = await enqueue('bank', 'thing.changed', { n: 1 });

    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, retrying: 1 });
    expect(await message(id!)).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_status: null,
      last_error: expect.stringMatching(/ECONNREFUSED/),
    });

    const back = await receiver({ port });
    clock.advance(5_000);
    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, delivered: 1 });
    expect(back.deliveries.map((d) => d.headers['webhook-id'])).toEqual([id]);
  });

  it('gives up on a receiver that hangs, and does not follow redirects', async () => {
    const r = await receiver({ replies: ['hang', 302] });
    await webhooks.registerEndpoint('bank', r.url);
    const [id] = await enqueue('bank', 'thing.changed', { n: 1 });

    expect(await webhooks.deliverDue()).toMatchObject({ retrying: 1 });
    expect(await message(id!)).toMatchObject({ attempts: 1, last_error: 'timed out after 300 ms' });
    clock.advance(RETRY_SCHEDULE_MS[0]!);
    expect(await webhooks.deliverDue()).toMatchObject({ retrying: 1 });
    expect(await message(id!)).toMatchObject({
      attempts: 2,
      last_status: 302,
      last_error: 'HTTP 302 (redirects are not followed)',
    });
    expect(r.deliveries.map((d) => d.path)).toEqual(['/hook', '/hook']);
    clock.advance(RETRY_SCHEDULE_MS[1]!);
    expect(await webhooks.deliverDue()).toMatchObject({ delivered: 1 });
  });

  it('disables an endpoint that answers 410 Gone and kills its pending messages', async () => {
    const gone = await receiver({ replies: [410] });
    const fine = await receiver();
    const goneEndpoint = await webhooks.registerEndpoint('bank', gone.url);
    await webhooks.registerEndpoint('bank', fine.url);
    await enqueue('bank', 'thing.changed', { n: 1 });
    clock.advance(1);
    await enqueue('bank', 'thing.changed', { n: 2 });
    await enqueue('bank', 'thing.changed', { n: 3 });

    // The two oldest messages (n = 1 to each endpoint): 410 from one, 200 from the other.
    expect(await webhooks.deliverDue(2)).toEqual({
      claimed: 2,
      delivered: 1,
      retrying: 0,
      dead: 3, // the 410 message and the two still pending for that endpoint
      lost: 0,
    });
    const endpoint = await database.db
      .selectFrom('webhook_endpoints')
      .selectAll()
      .where('id', '=', goneEndpoint.id)
      .executeTakeFirstOrThrow();
    expect(endpoint.disabled_at).toEqual(clock.now());
    const goneMessages = await database.db
      .selectFrom('webhook_messages')
      .selectAll()
      .where('endpoint_id', '=', goneEndpoint.id)
      .orderBy('created_at')
      .execute();
    const byN = goneMessages
      .map((m) => [(m.payload as { n: number }).n, m.status, m.attempts, m.last_status] as const)
      .sort((a, b) => a[0] - b[0]);
    expect(byN).toEqual([
      [1, 'dead', 1, 410],
      [2, 'dead', 0, null],
      [3, 'dead', 0, null],
    ]);
    expect(goneMessages.every((m) => /410 Gone/.test(m.last_error ?? ''))).toBe(true);

    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 2, delivered: 2 });
    expect(gone.deliveries).toHaveLength(1);
    // A batch is sent in parallel: arrival order is not promised.
    expect(fine.deliveries.map((d) => JSON.parse(d.body).data.n).sort()).toEqual([1, 2, 3]);

    // New events no longer go to the disabled endpoint, and its messages cannot be replayed.
    expect(await enqueue('bank', 'thing.changed', { n: 4 })).toHaveLength(1);
    await expect(webhooks.replay(goneMessages[0]!.id)).rejects.toMatchObject({
      code: 'ERR_WEBHOOK_ENDPOINT_DISABLED',
    });
  });

  it('kills a message past the retry schedule; replay() makes it deliverable again', async () => {
    const total = RETRY_SCHEDULE_MS.reduce((a, b) => a + b, 0);
    expect(total / 86_400_000).toBeGreaterThan(3);
    expect(total / 86_400_000).toBeLessThan(4);

    const r = await receiver({ replies: Array<Reply>(RETRY_SCHEDULE_MS.length + 1).fill(500) });
    await webhooks.registerEndpoint('bank', r.url);
    const [id] = await enqueue('bank', 'thing.changed', { n: 1 });
    for (const wait of RETRY_SCHEDULE_MS) {
      expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, retrying: 1 });
      clock.advance(wait);
    }
    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, dead: 1, retrying: 0 });
    expect(r.deliveries).toHaveLength(RETRY_SCHEDULE_MS.length + 1);
    expect(new Set(r.deliveries.map((d) => d.headers['webhook-id']))).toEqual(new Set([id]));
    expect(await message(id!)).toMatchObject({
      status: 'dead',
      attempts: RETRY_SCHEDULE_MS.length + 1,
      last_status: 500,
    });
    clock.advance(30 * 86_400_000);
    expect((await webhooks.deliverDue()).claimed).toBe(0);

    expect(await webhooks.listMessages('bank', { status: 'dead' })).toEqual([
      expect.objectContaining({ id, status: 'dead', eventType: 'thing.changed' }),
    ]);
    expect(await webhooks.listMessages('bank', { status: 'pending' })).toEqual([]);
    expect(await webhooks.listMessages('someone-else')).toEqual([]);

    await webhooks.replay(id!);
    expect(await message(id!)).toMatchObject({ status: 'pending', attempts: 0 });
    await expect(webhooks.replay(id!)).rejects.toMatchObject({
      code: 'ERR_WEBHOOK_NOT_REPLAYABLE',
    });
    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, delivered: 1 });
    expect(await message(id!)).toMatchObject({ status: 'delivered', attempts: 1 });

    // A delivered message can be sent again too (a receiver lost it).
    await webhooks.replay(id!);
    expect(await webhooks.deliverDue()).toMatchObject({ delivered: 1 });
    expect(r.deliveries).toHaveLength(RETRY_SCHEDULE_MS.length + 3);

    const missing = await webhooks.replay('msg_nope').catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(WebhookError);
    expect(missing).toMatchObject({ code: 'ERR_WEBHOOK_NOT_FOUND', status: 404 });
  });

  it('lists by event type, and scoped to an owner hides and refuses others’ messages', async () => {
    const r = await receiver();
    await webhooks.registerEndpoint('bank', r.url);
    await webhooks.registerEndpoint('other', r.url);
    const [granted] = await enqueue('bank', 'consent.granted', { n: 1 });
    clock.advance(1_000);
    const [revoked] = await enqueue('bank', 'consent.revoked', { n: 1 });
    const [others] = await enqueue('other', 'consent.revoked', { n: 2 });
    expect(await webhooks.deliverDue()).toMatchObject({ delivered: 3 });

    const ids = async (filter: Parameters<Webhooks['listMessages']>[1]) =>
      (await webhooks.listMessages('bank', filter)).map((m) => m.id);
    expect(await ids({})).toEqual([revoked, granted]);
    expect(await ids({ eventType: 'consent.revoked' })).toEqual([revoked]);
    expect(await ids({ eventType: 'consent.revoked', status: 'pending' })).toEqual([]);
    expect(await webhooks.getMessage('bank', revoked!)).toMatchObject({
      id: revoked,
      status: 'delivered',
    });
    expect(await webhooks.getMessage('bank', others!)).toBeUndefined();

    // Another owner's message is as unknown as a missing one, and stays as it was.
    await expect(webhooks.replay(others!, { owner: 'bank' })).rejects.toMatchObject({
      code: 'ERR_WEBHOOK_NOT_FOUND',
    });
    expect(await message(others!)).toMatchObject({ status: 'delivered', attempts: 1 });
    await webhooks.replay(revoked!, { owner: 'bank' });
    expect(await message(revoked!)).toMatchObject({ status: 'pending', attempts: 0 });
    await expect(webhooks.replay(revoked!, { owner: 'bank' })).rejects.toMatchObject({
      code: 'ERR_WEBHOOK_NOT_REPLAYABLE',
    });
  });

  it('two workers delivering at once deliver each message exactly once', async () => {
    const r = await receiver({ delayMs: 5 });
    await webhooks.registerEndpoint('bank', r.url);
    const ids = await inTransaction(database.db, async (trx) => {
      const all: string[] = [];
      for (let n = 0; n < 40; n++)
        all.push(...(await webhooks.enqueue(trx, 'bank', 'thing.changed', { n })));
      return all;
    });

    // On PostgreSQL the second worker has its own pool, as another instance would.
    let second: Database<TestDB> | undefined;
    if (engine.name === 'postgres' && database.url) {
      second = await openDatabase<TestDB>({ name: 'worker2', url: database.url, poolSize: 2 });
    }
    try {
      const workers = [webhooks, make({ db: (second ?? database).db })];
      const drain = async (worker: Webhooks) => {
        let delivered = 0;
        for (;;) {
          const counts = await worker.deliverDue(5);
          delivered += counts.delivered;
          if (counts.claimed === 0) return delivered;
        }
      };
      const delivered = await Promise.all(workers.map(drain));
      expect(delivered[0]! + delivered[1]!).toBe(40);
    } finally {
      await second?.close();
    }
    const received = r.deliveries.map((d) => d.headers['webhook-id']);
    expect(received).toHaveLength(40);
    expect(new Set(received)).toEqual(new Set(ids));
  });

  it('leaves a message claimed by a worker that died to be retried after the lease', async () => {
    const r = await receiver();
    await webhooks.registerEndpoint('bank', r.url);
    const [id] = await enqueue('bank', 'thing.changed', { n: 1 });

    let kill: ((err: Error) => void) | undefined;
    const dying = make({
      fetch: () =>
        new Promise<Response>((_resolve, reject) => {
          kill = reject;
        }),
    });
    const pass = dying.deliverDue();
    await vi.waitFor(() => expect(kill).toBeDefined());

    expect((await webhooks.deliverDue()).claimed).toBe(0);
    clock.advance(CLAIM_LEASE_MS - 1);
    expect((await webhooks.deliverDue()).claimed).toBe(0);
    clock.advance(1);
    expect(await webhooks.deliverDue()).toMatchObject({ claimed: 1, delivered: 1 });

    // The stale worker comes back: its outcome no longer counts.
    kill!(new Error('worker killed'));
    expect(await pass).toMatchObject({ claimed: 1, lost: 1, retrying: 0 });
    expect(await message(id!)).toMatchObject({ status: 'delivered', attempts: 1 });
    expect(r.deliveries).toHaveLength(1);
  });

  it('runs as a background worker until stopped', async () => {
    const r = await receiver();
    await webhooks.registerEndpoint('bank', r.url);
    await enqueue('bank', 'thing.changed', { n: 1 });
    const stop = webhooks.startWorker({ intervalMs: 10, logger: pino({ level: 'silent' }) });
    await vi.waitFor(() => expect(r.deliveries).toHaveLength(1), { timeout: 5_000 });
    await stop();

    await enqueue('bank', 'thing.changed', { n: 2 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.deliveries).toHaveLength(1);
  });

  it('without allowPrivateUrls refuses non-public URLs, and stores the secret sealed', async () => {
    const strict = make({ allowPrivateUrls: false });
    for (const url of [
      'http://hooks.example.com/x',
      'https://localhost/x',
      'https://127.0.0.1/x',
      'https://10.0.0.5/x',
      'https://192.168.1.20/x',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/x',
      'https://[fc00::1]/x',
    ]) {
      const err = await strict.registerEndpoint('bank', url).catch((e: unknown) => e);
      expect(err, url).toBeInstanceOf(WebhookError);
      expect(err, url).toMatchObject({ code: 'ERR_WEBHOOK_URL', status: 400 });
    }
    expect(await database.db.selectFrom('webhook_endpoints').selectAll().execute()).toEqual([]);

    const { id, secret } = await strict.registerEndpoint('bank', 'https://hooks.example.com/x');
    const rows = await database.db.selectFrom('webhook_endpoints').selectAll().execute();
    const dump = JSON.stringify(rows);
    expect(dump).toContain('https://hooks.example.com/x');
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(secret.slice('whsec_'.length));
    expect(dump).not.toContain(secret.slice('whsec_'.length, 20));
    const stored = parseSealed(rows[0]!.secret);
    expect(await sealer.openText(stored, recordAad('webhook_endpoints', id, 'secret'))).toBe(
      secret,
    );
  });
});
