import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine, freshDatabase } from '../../../test/support/databases.js';
import { loadConfig } from '../../config/config.js';
import { manualClock } from '../../platform/clock.js';
import { memoryKeyring } from '../../platform/crypto/index.js';
import { inTransaction } from '../../platform/db/index.js';
import {
  createCertificateSigningRequest,
  initPki,
  loadPki,
  type Pki,
} from '../../platform/pki/index.js';
import { openServiceRuntime, type ServiceRuntime } from '../../platform/runtime/service-runtime.js';
import {
  RETRY_SCHEDULE_MS,
  type JsonValue,
  type WebhookTables,
} from '../../platform/webhooks/index.js';
import { buildPortalApp, type PortalApp } from '../app.js';
import type { PortalDB } from '../db.js';
import { portalMigrations } from '../migrations.js';

/*
 * GET /partner/webhooks/messages and POST /partner/webhooks/messages/{id}/replay over
 * the real mTLS listener: each partner is who its client certificate says, and sees and
 * replays only its own messages.
 */

interface Caller {
  clientId: string;
  agent: Agent;
}

interface Message {
  id: string;
  endpoint_id: string;
  type: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  created_at: string;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_response_status: number | null;
}

interface Delivery {
  headers: Record<string, string>;
  body: string;
}

/** A partner's receiver: answers `status` (mutable) and keeps what it got. */
async function startReceiver() {
  const deliveries: Delivery[] = [];
  const state = { status: 204 };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += String(chunk)));
    req.on('end', () => {
      deliveries.push({ headers: req.headers as Record<string, string>, body });
      res.writeHead(state.status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name: string) => `http://127.0.0.1:${port}/${name}`,
    deliveries,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeEachEngine('partner API: webhook deliveries', (engine) => {
  let dir: string;
  let pki: Pki;
  let clock: ReturnType<typeof manualClock>;
  let runtime: ServiceRuntime<PortalDB>;
  let app: PortalApp;
  let base: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let bankA: Caller;
  let bankB: Caller;
  const secrets = new Map<string, string>();

  /** A partner registered as `partner add` would, holding its own certificate's key. */
  async function register(name: string): Promise<Caller> {
    const { csrPem, keyPem } = await createCertificateSigningRequest({ commonName: name });
    const { publicKey } = await generateKeyPair('ES256', { extractable: true });
    const signingJwk = { ...(await exportJWK(publicKey)), kid: `${name}-1`, alg: 'ES256' };
    const { clientId, certPem } = await app.partners!.register({
      name,
      redirectUris: [`https://${name}.test/callback`],
      signingJwk,
      csrPem,
    });
    const agent = new Agent({ connect: { ca: pki.caPem, cert: certPem, key: keyPem } });
    return { clientId, agent };
  }

  const list = (who: Caller, query = '') =>
    undiciFetch(`${base}/partner/webhooks/messages${query}`, { dispatcher: who.agent });
  const listed = async (who: Caller, query = '') => {
    const res = await list(who, query);
    expect(res.status).toBe(200);
    return ((await res.json()) as { messages: Message[] }).messages;
  };
  const replay = (who: Caller, id: string) =>
    undiciFetch(`${base}/partner/webhooks/messages/${encodeURIComponent(id)}/replay`, {
      method: 'POST',
      dispatcher: who.agent,
    });

  /** Subscribes through the existing route, as a partner does. */
  async function subscribe(who: Caller, name: string) {
    const res = await undiciFetch(`${base}/partner/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url(name) }),
      dispatcher: who.agent,
    });
    expect(res.status).toBe(201);
    const { id, secret } = (await res.json()) as { id: string; secret: string };
    secrets.set(who.clientId, secret);
    return id;
  }

  /** An event for the partner, queued the way the consent service queues them. */
  async function event(who: Caller, type: string, payload: JsonValue = {}) {
    clock.advance(1_000);
    const [id] = await inTransaction(runtime.db, (trx) =>
      app.webhooks.enqueue(trx as unknown as Kysely<WebhookTables>, who.clientId, type, payload),
    );
    return id!;
  }

  /** Fails every attempt until the retry schedule is over: the message is dead. */
  async function kill(id: string) {
    receiver.state.status = 500;
    for (let attempt = 0; attempt <= RETRY_SCHEDULE_MS.length; attempt++) {
      await app.webhooks.deliverDue();
      clock.advance(RETRY_SCHEDULE_MS[attempt] ?? 0);
    }
    receiver.state.status = 204;
    expect(await app.webhooks.getMessage(bankA.clientId, id)).toMatchObject({ status: 'dead' });
  }

  beforeEach(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'soglasie-wh-api-'));
    await initPki(dir);
    pki = await loadPki(dir);
    // Real time at the start, so that deliveries made before the clock moves verify.
    clock = manualClock(new Date());
    runtime = await openServiceRuntime<PortalDB>({
      service: 'portal',
      config: loadConfig({ SOGLASIE_MODE: 'test', SOGLASIE_DATA_DIR: '/nonexistent' }),
      migrations: portalMigrations,
      logger: pino({ level: 'silent' }),
      clock,
      keyring: memoryKeyring(),
      database: (await freshDatabase<PortalDB>(engine)) as never,
    });
    app = await buildPortalApp(runtime, { pki });
    await app.partnerApi!.listen({ host: '127.0.0.1', port: 0 });
    base = `https://127.0.0.1:${(app.partnerApi!.server.address() as AddressInfo).port}`;
    receiver = await startReceiver();
    bankA = await register('bank-a');
    bankB = await register('bank-b');
  });

  afterEach(async () => {
    await bankA?.agent.close();
    await bankB?.agent.close();
    await receiver?.close();
    await app?.partnerApi?.close();
    await app?.close();
    await runtime?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists only the calling partner’s messages, newest first, never the secret', async () => {
    const endpointA = await subscribe(bankA, 'a');
    await subscribe(bankB, 'b');
    const granted = await event(bankA, 'consent.granted', { consent_id: 'c-1' });
    const othersGranted = await event(bankB, 'consent.granted', { consent_id: 'c-2' });
    const revoked = await event(bankA, 'consent.revoked', { consent_id: 'c-1' });

    const res = await list(bankA);
    expect(res.headers.get('content-type')).toContain('application/json');
    const body = await res.text();
    const { messages } = JSON.parse(body) as { messages: Message[] };
    expect(messages.map((m) => m.id)).toEqual([revoked, granted]);
    expect(messages[0]).toEqual({
      id: revoked,
      endpoint_id: endpointA,
      type: 'consent.revoked',
      status: 'pending',
      attempts: 0,
      created_at: clock.now().toISOString(),
      next_attempt_at: clock.now().toISOString(),
      delivered_at: null,
      last_response_status: null,
    });
    expect(body).not.toContain('whsec_');
    expect(body).not.toContain(secrets.get(bankA.clientId)!.slice(6));
    expect(body).not.toContain(receiver.url('a'));

    expect((await listed(bankB)).map((m) => m.id)).toEqual([othersGranted]);

    // A certificate from the portal's CA that no partner holds: refused.
    const { csrPem, keyPem } = await createCertificateSigningRequest({ commonName: 'stray' });
    const stray = await pki.authority.issueClientCertificate({ csrPem, validityDays: 1 });
    const strayAgent = new Agent({ connect: { ca: pki.caPem, cert: stray.certPem, key: keyPem } });
    try {
      for (const refused of [
        await undiciFetch(`${base}/partner/webhooks/messages`, { dispatcher: strayAgent }),
        await undiciFetch(`${base}/partner/webhooks/messages/${granted}/replay`, {
          method: 'POST',
          dispatcher: strayAgent,
        }),
      ]) {
        expect(refused.status).toBe(403);
        expect(refused.headers.get('content-type')).toContain('application/problem+json');
        expect(await refused.json()).toMatchObject({ code: 'PARTNER_UNKNOWN' });
      }
    } finally {
      await strayAgent.close();
    }
  });

  it('filters by status and type, and limits', async () => {
    await subscribe(bankA, 'a');
    const delivered = await event(bankA, 'consent.granted', { consent_id: 'c-1' });
    expect(await app.webhooks.deliverDue()).toMatchObject({ delivered: 1 });
    const dead = await event(bankA, 'consent.revoked', { consent_id: 'c-1' });
    await kill(dead);
    const pending = await event(bankA, 'consent.granted', { consent_id: 'c-2' });

    const [d] = await listed(bankA, '?status=delivered');
    expect(d).toMatchObject({
      id: delivered,
      status: 'delivered',
      attempts: 1,
      next_attempt_at: null,
      last_response_status: 204,
    });
    expect(d!.delivered_at).toEqual(expect.any(String));
    expect(await listed(bankA, '?status=dead')).toEqual([
      expect.objectContaining({
        id: dead,
        status: 'dead',
        attempts: RETRY_SCHEDULE_MS.length + 1,
        next_attempt_at: null,
        delivered_at: null,
        last_response_status: 500,
      }),
    ]);
    expect((await listed(bankA, '?status=pending')).map((m) => m.id)).toEqual([pending]);
    expect((await listed(bankA, '?type=consent.granted')).map((m) => m.id)).toEqual([
      pending,
      delivered,
    ]);
    expect(
      (await listed(bankA, '?type=consent.granted&status=delivered')).map((m) => m.id),
    ).toEqual([delivered]);
    expect(await listed(bankA, '?type=consent.expired')).toEqual([]);
    expect((await listed(bankA, '?limit=1')).map((m) => m.id)).toEqual([pending]);

    for (const bad of ['?status=lost', '?limit=0', '?limit=1001', '?limit=ten']) {
      const res = await list(bankA, bad);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'VALIDATION_FAILED' });
    }
  });

  it('another partner can neither see nor replay a message; an unknown id is 404 alike', async () => {
    await subscribe(bankA, 'a');
    await subscribe(bankB, 'b');
    const dead = await event(bankA, 'consent.revoked', { consent_id: 'c-1' });
    await kill(dead);

    expect((await listed(bankB)).map((m) => m.id)).not.toContain(dead);
    expect(await listed(bankB, '?status=dead')).toEqual([]);
    for (const [who, id] of [
      [bankB, dead],
      [bankA, 'msg_00000000000000000000000000000000'],
    ] as const) {
      const res = await replay(who, id);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 404, code: 'ERR_WEBHOOK_NOT_FOUND' });
    }
    // Untouched by the refused replay.
    expect(await listed(bankA, '?status=dead')).toEqual([
      expect.objectContaining({ id: dead, attempts: RETRY_SCHEDULE_MS.length + 1 }),
    ]);
    expect(await app.audit.list({ action: 'webhook.replayed' })).toEqual([]);
  });

  it('a replayed dead message is pending again and the worker delivers it', async () => {
    await subscribe(bankA, 'a');
    const dead = await event(bankA, 'consent.revoked', { consent_id: 'c-1', status: 'revoked' });
    await kill(dead);
    const sent = receiver.deliveries.length;
    // Back to real time, so that the replayed delivery's timestamp verifies.
    clock.set(new Date());

    const res = await replay(bankA, dead);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      id: dead,
      status: 'pending',
      attempts: 0,
      next_attempt_at: clock.now().toISOString(),
      delivered_at: null,
    });
    expect((await listed(bankA, '?status=pending')).map((m) => m.id)).toEqual([dead]);
    // Still on its way: it cannot be replayed twice.
    const again = await replay(bankA, dead);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'ERR_WEBHOOK_NOT_REPLAYABLE' });

    const stop = app.webhooks.startWorker({ intervalMs: 20, logger: runtime.logger });
    try {
      await expect
        .poll(async () => (await listed(bankA, '?status=delivered')).map((m) => m.id))
        .toEqual([dead]);
    } finally {
      await stop();
    }
    expect(await listed(bankA)).toEqual([
      expect.objectContaining({ id: dead, attempts: 1, last_response_status: 204 }),
    ]);
    // The same message (same webhook-id), signed with the partner's secret.
    expect(receiver.deliveries).toHaveLength(sent + 1);
    const delivery = receiver.deliveries.at(-1)!;
    expect(delivery.headers['webhook-id']).toBe(dead);
    const envelope = new Webhook(secrets.get(bankA.clientId)!).verify(
      delivery.body,
      delivery.headers,
    );
    expect(envelope).toMatchObject({
      type: 'consent.revoked',
      data: { consent_id: 'c-1', status: 'revoked' },
    });
    expect(await app.audit.list({ action: 'webhook.replayed' })).toEqual([
      expect.objectContaining({
        actor: `partner:${bankA.clientId}`,
        subject: `webhook:${dead}`,
        details: { event_type: 'consent.revoked', previous_status: 'dead' },
      }),
    ]);
  });

  it('describes both endpoints in the partner listener’s /openapi.json', async () => {
    const res = await undiciFetch(`${base}/openapi.json`, { dispatcher: bankA.agent });
    const doc = (await res.json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(doc.paths['/partner/webhooks/messages']?.get).toBeDefined();
    expect(doc.paths['/partner/webhooks/messages/{id}/replay']?.post).toBeDefined();
    expect(doc.paths['/partner/webhooks']?.post).toBeDefined();
    expect(JSON.stringify(doc.paths['/partner/webhooks/messages'])).not.toContain('secret');
  });
});
