import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import * as client from 'openid-client';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partnerAdd } from '../../src/partner-kit/partner-add.js';
import { manualClock } from '../../src/platform/clock.js';
import { createSealer, memoryKeyring } from '../../src/platform/crypto/index.js';
import { inTransaction, openDatabase, type Database } from '../../src/platform/db/index.js';
import { randomIds } from '../../src/platform/ids.js';
import { readAdminToken } from '../../src/platform/runtime/admin-token.js';
import {
  CLAIM_LEASE_MS,
  createWebhooks,
  type WebhookTables,
} from '../../src/platform/webhooks/index.js';
import { freshPostgresUrl } from '../support/databases.js';
import { freePorts } from '../support/demo-process.js';
import {
  startPortalProcess,
  stopPortalProcess,
  type PortalProcess,
} from '../support/portal-process.js';
import { citizenApproves, partnerClient, pushedAuthorization } from '../support/partner-client.js';

/*
 * Scale-out (ARCHITECTURE.md): two portal instances, each with its webhook worker, as
 * separate processes on ONE PostgreSQL database, sharing the data directory (the KEK
 * file, the partner CA, the admin token; the data-dir lock is the embedded database's,
 * which PostgreSQL instances do not open). Both have the same public addresses, as
 * behind a load balancer; the test talks to each one directly.
 *
 * PostgreSQL only: an embedded database belongs to one process.
 */

const LINUX = existsSync('/proc/net/tcp');

type Instance = PortalProcess;
const startInstance = startPortalProcess;
const stopInstance = stopPortalProcess;

interface Received {
  id: string;
  type: string;
  data: { consent_id?: string };
  /** Which instance's process holds the sending socket (Linux /proc), when known. */
  from?: string | undefined;
}

/**
 * Which of `processes` owns the client end of a connection to our receiver: the socket
 * whose local port is the request's remote port, found in /proc/net/tcp, then among each
 * process's open file descriptors. Linux only; undefined elsewhere.
 */
function senderOf(
  remotePort: number,
  receiverPort: number,
  processes: Record<string, number | undefined>,
): string | undefined {
  if (!LINUX) return undefined;
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, '0');
  const line = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(`:${hex(remotePort)}`) && f[2]?.endsWith(`:${hex(receiverPort)}`));
  const inode = line?.[9];
  if (!inode) return undefined;
  for (const [name, pid] of Object.entries(processes)) {
    if (!pid) continue;
    try {
      const fds = readdirSync(`/proc/${pid}/fd`);
      if (fds.some((fd) => safeReadlink(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`))
        return name;
    } catch {
      // The process is gone.
    }
  }
  return undefined;
}

function safeReadlink(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch {
    return undefined;
  }
}

/**
 * The bank's webhook receiver: verifies every delivery with the standardwebhooks library
 * and answers 204; a delivery `hold` picks is left unanswered (an attempt in flight).
 */
async function startReceiver() {
  const state = {
    secret: '',
    /** Processes to tell deliveries apart by. */
    senders: {} as Record<string, number | undefined>,
    hold: (_event: Received): boolean => false,
    /** Every verified request, duplicates included, in arrival order. */
    verified: [] as Received[],
    /** Requests left unanswered. */
    held: [] as Received[],
    forged: 0,
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += String(chunk)));
    req.on('end', () => {
      let event: Received;
      try {
        const envelope = new Webhook(state.secret).verify(
          body,
          req.headers as Record<string, string>,
        ) as Omit<Received, 'id'>;
        event = {
          id: String(req.headers['webhook-id']),
          type: envelope.type,
          data: envelope.data,
          from: senderOf(req.socket.remotePort!, port, state.senders),
        };
      } catch {
        state.forged++;
        res.writeHead(401).end();
        return;
      }
      if (state.hold(event)) {
        state.held.push(event);
        return;
      }
      state.verified.push(event);
      // Some work per event: five batches of 20 (DEFAULT_BATCH) take one worker longer
      // than the other's polling interval (500 ms), so both take part in a burst.
      setTimeout(() => res.writeHead(204).end(), 250);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    state,
    url: `http://127.0.0.1:${port}/portal-events`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const counts = (ids: string[]) => {
  const byId = new Map<string, number>();
  for (const id of ids) byId.set(id, (byId.get(id) ?? 0) + 1);
  return byId;
};

describe.runIf(process.env.TEST_DATABASE_URL)('two portal instances on one PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> };
  let observer: Database<WebhookTables>;
  let dataDir: string;
  let a: Instance;
  let b: Instance;
  let rp: Awaited<ReturnType<typeof partnerClient>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  const pendingMessages = async () =>
    (
      await observer.db
        .selectFrom('webhook_messages')
        .select('id')
        .where('status', '=', 'pending')
        .execute()
    ).map((m) => m.id);

  const message = (id: string) =>
    observer.db
      .selectFrom('webhook_messages')
      .select(['status', 'attempts', 'next_attempt_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();

  /** A consent through instance A: PAR and token at A's mTLS port, the citizen at A. */
  async function consentThroughA() {
    const { url, codeVerifier, state } = await pushedAuthorization(rp);
    expect(url.origin).toBe(new URL(a.url).origin);
    const { callback } = await citizenApproves(a.url, url);
    const tokens = await client.authorizationCodeGrant(rp.config, callback, {
      pkceCodeVerifier: codeVerifier,
      expectedState: state,
    });
    const consentId = (tokens.authorization_details as unknown as { consent_id: string }[])[0]!
      .consent_id;
    return { tokens, consentId, sub: tokens.claims()!.sub };
  }

  const read = (instance: Instance, token: string, sub: string) =>
    client.fetchProtectedResource(
      rp.config,
      token,
      new URL(`${instance.mtlsUrl}/rs/prns/${sub}`),
      'GET',
    );

  /** Revokes the consent at A, as the partner's «disconnect» does (RFC 7009 at A). */
  const revokeAtA = (refreshToken: string) =>
    client.tokenRevocation(rp.config, refreshToken, { token_type_hint: 'refresh_token' });

  beforeAll(async () => {
    database = await freshPostgresUrl();
    observer = await openDatabase<WebhookTables>({
      name: 'observer',
      url: database.url,
      poolSize: 2,
    });
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-multi-'));
    const [httpA, mtlsA, httpB, mtlsB] = await freePorts(4);
    const portsA = { http: httpA!, mtls: mtlsA! };
    const portsB = { http: httpB!, mtls: mtlsB! };
    const env = {
      SOGLASIE_DATA_DIR: dataDir,
      PORTAL_DATABASE_URL: database.url,
      // One public face for both, as behind a load balancer: the issuer, the token
      // audience and the discovery document are the same whichever instance answers.
      PORTAL_PUBLIC_URL: `http://localhost:${portsA.http}`,
      PORTAL_MTLS_PUBLIC_URL: `https://localhost:${portsA.mtls}`,
      LOG_LEVEL: 'error',
    };
    // One after the other: the first makes the KEK, the CA and the demo personas.
    a = await startInstance('A', portsA, env);
    b = await startInstance('B', portsB, env);

    await partnerAdd({
      portalAdminUrl: `http://127.0.0.1:${portsA.http}`,
      adminToken: readAdminToken(dataDir, 'portal'),
      name: 'Банк',
      redirectUris: ['http://localhost:4999/callback'],
      out: path.join(dataDir, 'bank-partner'),
    });
    rp = await partnerClient(path.join(dataDir, 'bank-partner'));
    receiver = await startReceiver();
    receiver.state.senders = { A: a.child.pid, B: b.child.pid };
    // Subscribed through B: the endpoint is in the shared database, A's events use it too.
    const subscribed = await rp.post(`${b.mtlsUrl}/partner/webhooks`, { url: receiver.url });
    expect(subscribed.status).toBe(201);
    receiver.state.secret = ((await subscribed.json()) as { secret: string }).secret;
  }, 60_000);

  afterAll(async () => {
    await stopInstance(a);
    await stopInstance(b);
    await rp?.close();
    await receiver?.close();
    await observer?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a consent granted through A reads through B; revoked at A, B refuses it at once', async () => {
    const { tokens, sub } = await consentThroughA();
    const onB = await read(b, tokens.access_token, sub);
    expect(onB.status).toBe(200);
    expect(await onB.json()).toMatchObject({ oid: sub, lastName: 'Иванов' });
    expect((await read(a, tokens.access_token, sub)).status).toBe(200);

    await revokeAtA(tokens.refresh_token!);
    // No wait, no retry: every read checks the consent in the shared database.
    const refused = await read(b, tokens.access_token, sub);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'CONSENT_INACTIVE' });
  });

  it('with both workers running every event arrives, signed, and no message twice', async () => {
    // A burst beside the consent events, queued by a third party in one transaction, so
    // that the two workers compete for the same due rows.
    const burst = await inTransaction(observer.db, async (trx) => {
      const webhooks = createWebhooks({
        db: observer.db,
        sealer: createSealer(memoryKeyring()),
        clock: manualClock(new Date()),
        ids: randomIds,
        allowPrivateUrls: true,
      });
      const ids: string[] = [];
      for (let n = 0; n < 100; n++)
        ids.push(...(await webhooks.enqueue(trx, rp.info.client_id, 'test.burst', { n })));
      return ids;
    });
    expect(burst).toHaveLength(100);

    await expect.poll(pendingMessages, { timeout: 15_000, interval: 100 }).toEqual([]);
    const { verified, forged } = receiver.state;
    expect(forged).toBe(0);
    // The first test's consent: granted and revoked, both announced (a batch is sent in
    // parallel, so not necessarily in that order).
    expect(
      verified
        .filter((e) => e.type !== 'test.burst')
        .map((e) => e.type)
        .sort(),
    ).toEqual(['consent.granted', 'consent.revoked']);
    expect(new Set(verified.map((e) => e.id))).toEqual(
      new Set([...verified.filter((e) => e.type !== 'test.burst').map((e) => e.id), ...burst]),
    );
    // Each message once: SKIP LOCKED and the lease kept the workers off each other's rows.
    const twice = [...counts(verified.map((e) => e.id))].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    // Both workers took part (told apart by the sending process, where /proc allows).
    if (LINUX) {
      expect(new Set(verified.filter((e) => e.type === 'test.burst').map((e) => e.from))).toEqual(
        new Set(['A', 'B']),
      );
    }
    const rows = await observer.db
      .selectFrom('webhook_messages')
      .select(['status', 'attempts'])
      .execute();
    expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1)).toBe(true);
  });

  it('an instance killed mid-delivery loses no event: the other delivers it after the lease', async () => {
    const { tokens, consentId } = await consentThroughA();
    await expect.poll(pendingMessages, { timeout: 10_000, interval: 100 }).toEqual([]);
    // The revocation will be claimed, sent and never answered.
    receiver.state.hold = (e) => e.type === 'consent.revoked' && e.data.consent_id === consentId;

    // B paused, so that A's worker is the one that claims it.
    b.child.kill('SIGSTOP');
    let claimedAt: Date;
    try {
      await revokeAtA(tokens.refresh_token!);
      await expect.poll(() => receiver.state.held.length, { timeout: 5_000, interval: 20 }).toBe(1);
      claimedAt = new Date();
      // A dies with the delivery in flight: no outcome is ever recorded.
      a.child.kill('SIGKILL');
      await a.exited;
    } finally {
      b.child.kill('SIGCONT');
    }
    const victim = receiver.state.held[0]!.id;
    if (LINUX) expect(receiver.state.held[0]!.from).toBe('A');
    const leased = await message(victim);
    expect(leased).toMatchObject({ status: 'pending', attempts: 0 });
    const leaseUntil = new Date(leased.next_attempt_at);
    expect(leaseUntil.getTime()).toBeGreaterThan(claimedAt.getTime() + CLAIM_LEASE_MS - 10_000);

    // While the lease runs, B's worker (every 500 ms) keeps off it.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(receiver.state.verified.map((e) => e.id)).not.toContain(victim);
    expect(await message(victim)).toMatchObject({ status: 'pending', attempts: 0 });

    // The lease lapses: rather than wait CLAIM_LEASE_MS, bring its end to now. Only while
    // the claim is A's (the same lease), exactly as the passing of time would.
    receiver.state.hold = () => false;
    const lapsed = await sql`
      update webhook_messages set next_attempt_at = now()
      where id = ${victim} and status = 'pending' and next_attempt_at = ${leaseUntil}`.execute(
      observer.db as unknown as Kysely<never>,
    );
    expect(Number(lapsed.numAffectedRows)).toBe(1);

    await expect
      .poll(async () => (await message(victim)).status, { timeout: 5_000, interval: 50 })
      .toBe('delivered');
    // A's attempt has no recorded outcome; B's is the one that counts.
    expect(await message(victim)).toMatchObject({ attempts: 1 });
    const delivered = receiver.state.verified.filter((e) => e.id === victim);
    expect(delivered).toHaveLength(1);
    if (LINUX) expect(delivered[0]!.from).toBe('B');
    expect(delivered[0]).toMatchObject({
      type: 'consent.revoked',
      data: { consent_id: consentId },
    });
    // B carries on alone: the revoked consent stays refused there.
    const refused = await read(b, tokens.access_token, tokens.claims()!.sub);
    expect(refused.status).toBe(403);
    expect(receiver.state.forged).toBe(0);
  });
});
