import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import * as client from 'openid-client';
import pino from 'pino';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { insertLink } from '../../../test/support/bank-links.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { testBank } from '../../../test/support/services.js';
import { recordAad, serializeSealed } from '../../platform/crypto/index.js';
import { createInFlightRegistry, type InFlightRegistry } from './in-flight.js';
import type { PortalClient } from './portal-client.js';
import { createPortalEvents, type PortalEvents } from './portal-events.js';
import { createPortalEventStore, type PortalEventTables } from './portal-events.store.js';
import { createPortalLinkService, type PortalLinkService } from './portal-link.service.js';
import {
  createPortalLinkStore,
  type PortalLinkStore,
  type PortalLinkTables,
} from './portal-link.store.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const CONSENT = 'consent-race-1';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Answer = { status: number; body: string; contentType: string };

/**
 * The portal as the bank's client sees it, answering only when the test says so: data API
 * GETs (cancelled by their signal, as undici's are) and the token endpoint (openid-client).
 */
function slowPortal() {
  const gets: { url: string; signal: AbortSignal | undefined; answer: (a: Answer) => void }[] = [];
  const posts: string[] = [];
  const tokenCalls: string[] = [];
  const tokenGate = deferred<void>();
  const tokenAnswered = deferred<void>();
  const config = new client.Configuration(
    {
      issuer: 'https://portal.test',
      token_endpoint: 'https://portal.test/token',
      revocation_endpoint: 'https://portal.test/revoke',
    },
    'bank',
    undefined,
    client.None(),
  );
  config[client.customFetch] = async (url) => {
    tokenCalls.push(url);
    if (url.endsWith('/revoke')) return new Response(null, { status: 200 });
    await tokenGate.promise;
    tokenAnswered.resolve();
    return Response.json({
      access_token: 'at-2',
      token_type: 'Bearer',
      expires_in: 600,
      refresh_token: 'rt-2',
    });
  };
  const portal: PortalClient = {
    material: {
      clientId: 'bank',
      issuer: 'https://portal.test',
      redirectUri: 'https://bank.test/portal/callback',
      dataApi: 'https://portal.test:8443/rs',
      mtlsBase: 'https://portal.test:8443',
    },
    config: async () => config,
    get: (url, _headers, signal) =>
      new Promise<Answer>((resolve, reject) => {
        gets.push({ url, signal, answer: resolve });
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      }),
    post: async (url) => {
      posts.push(url);
      return { status: 201, body: '{}' };
    },
    sign: async () => 'signed-receipt',
    close: async () => undefined,
  };
  return { portal, gets, posts, tokenCalls, tokenGate, tokenAnswered };
}

/** J5: the portal's revocation arrives while an operation under the consent is running. */
describeEachEngine('bank: operations in flight when the consent ends (J5)', (engine) => {
  let svc: Awaited<ReturnType<typeof testBank>>;
  let fake: ReturnType<typeof slowPortal>;
  let store: PortalLinkStore;
  let inFlight: InFlightRegistry;
  let links: PortalLinkService;
  let events: PortalEvents;
  let told: { customerId: string; text: string }[];
  let customerId: string;

  beforeEach(async () => {
    svc = await testBank(engine);
    fake = slowPortal();
    told = [];
    const logger = pino({ level: 'silent' });
    store = createPortalLinkStore(svc.runtime.db as unknown as Kysely<PortalLinkTables>);
    inFlight = createInFlightRegistry();
    links = createPortalLinkService({
      portal: fake.portal,
      store,
      keyring: svc.runtime.keyring,
      clock: svc.clock,
      ids: svc.runtime.ids,
      inFlight,
      notify: async (id, message) => {
        told.push({ customerId: id, text: message.text });
      },
      logger,
    });
    const eventStore = createPortalEventStore(
      svc.runtime.db as unknown as Kysely<PortalEventTables>,
    );
    await eventStore.saveSubscription({
      endpoint_id: 'ep_1',
      secret: serializeSealed(
        await svc.runtime.sealer.seal(SECRET, recordAad('portal_webhook', 'portal', 'secret')),
      ),
      registered_at: svc.clock.now(),
    });
    events = createPortalEvents({
      portal: fake.portal,
      store: eventStore,
      sealer: svc.runtime.sealer,
      clock: svc.clock,
      logger,
      receiverUrl: 'http://bank.test/webhooks/portal',
      endConsent: links.endConsent,
    });
    customerId = (await svc.app.customers.findIdByUsername('ivanov'))!;
  });
  afterEach(async () => {
    fake.tokenGate.resolve();
    await svc.close();
  });

  const revoke = (id = 'msg_1', type = 'consent.revoked') => {
    const at = new Date();
    const payload = JSON.stringify({
      type,
      timestamp: at.toISOString(),
      data: { consent_id: CONSENT },
    });
    return events.receive(payload, {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': new Webhook(SECRET).sign(id, at, payload),
    });
  };
  const vault = () =>
    (svc.runtime.db as unknown as Kysely<PortalLinkTables>)
      .selectFrom('portal_links')
      .selectAll()
      .execute();
  const ORDERS: Answer = {
    status: 200,
    body: JSON.stringify({
      elements: [{ number: '1', serviceName: 'Загранпаспорт', statusText: 'Принято' }],
    }),
    contentType: 'application/json',
  };

  it('a revocation during a test request cancels it with «доступ отозван», and the vault row stays deleted', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const pending = links.testRequest(customerId);
    await vi.waitFor(() => expect(fake.gets).toHaveLength(1));
    expect(fake.gets[0]!.url).toContain('/orders');
    expect(inFlight.running(CONSENT)).toBe(1);

    expect(await revoke()).toBe('handled');
    // The portal's answer, had it been on its way, changes nothing now.
    fake.gets[0]!.answer(ORDERS);
    const outcome = await pending;
    expect(outcome).toEqual({
      ok: false,
      code: 'CONSENT_ENDED',
      message: expect.stringContaining('доступ отозван') as string,
    });
    expect((outcome as { message: string }).message).toBe(
      'Запрос отменён: доступ отозван на Госуслугах. Банк удалил полученные с портала данные.',
    );
    expect(fake.gets[0]!.signal?.aborted).toBe(true);
    expect(inFlight.running(CONSENT)).toBe(0);
    expect(await vault()).toHaveLength(0);
    expect((await links.history(customerId)).map((e) => e.kind)).toEqual(['revoked']);
    expect(told).toEqual([
      {
        customerId,
        text: 'Банк: доступ к данным Госуслуг отключён. Банк удалил полученные с портала данные.',
      },
    ]);
    await vi.waitFor(() => expect(fake.posts).toHaveLength(1));
    expect(fake.posts[0]).toContain(`/partner/consents/${CONSENT}/deletion-receipt`);

    // A request started afterwards finds nothing to use.
    expect(await links.testRequest(customerId)).toMatchObject({ ok: false, code: 'NOT_LINKED' });
  });

  it('a token refresh that completes after the shred writes nothing back and fetches nothing', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT, {
      accessExpiresAt: new Date(svc.clock.now().getTime() - 1_000),
    });
    const pending = links.testRequest(customerId);
    await vi.waitFor(() => expect(fake.tokenCalls).toEqual(['https://portal.test/token']));

    expect(await revoke('msg_2', 'consent.expired')).toBe('handled');
    const outcome = await pending;
    expect(outcome).toMatchObject({ ok: false, code: 'CONSENT_ENDED' });
    expect((outcome as { message: string }).message).toContain('срок согласия на Госуслугах истёк');

    // The portal answers the refresh late: the new tokens must not resurrect the row.
    fake.tokenGate.resolve();
    await fake.tokenAnswered.promise;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await vault()).toHaveLength(0);
    expect(fake.gets).toHaveLength(0);
  });

  it('without a revocation, the refreshed tokens are kept and the request completes', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT, {
      accessExpiresAt: new Date(svc.clock.now().getTime() - 1_000),
    });
    const before = (await store.get(customerId))!.tokens;
    fake.tokenGate.resolve();
    const pending = links.testRequest(customerId);
    await vi.waitFor(() => expect(fake.gets).toHaveLength(1));
    fake.gets[0]!.answer(ORDERS);
    expect(await pending).toMatchObject({ ok: true });
    expect((await store.get(customerId))!.tokens).not.toBe(before);
    expect(inFlight.running(CONSENT)).toBe(0);
  });

  it('an operation that read the row just before the shred is cancelled when it starts', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const row = await store.get(customerId);
    expect(await revoke('msg_3')).toBe('handled');
    const op = inFlight.begin(row!.consent_id);
    expect(op.signal.aborted).toBe(true);
    op.end();
  });

  it('token updates land only on the row of their own consent', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const original = (await store.get(customerId))!.tokens;
    // A refresh under an older consent, finishing after the customer linked again.
    expect(await store.updateTokens(customerId, 'an-older-consent', 'stale')).toBe(false);
    expect((await store.get(customerId))!.tokens).toBe(original);
    // …and after the shred: nothing to update, nothing created.
    await links.endConsent(CONSENT, 'revoked');
    expect(await store.updateTokens(customerId, CONSENT, 'late')).toBe(false);
    expect(await vault()).toHaveLength(0);
  });

  it('unlinking at the bank cancels a request in flight; it is in the history but no SMS is sent', async () => {
    await insertLink(svc.runtime, svc.clock, customerId, CONSENT);
    const pending = links.testRequest(customerId);
    await vi.waitFor(() => expect(fake.gets).toHaveLength(1));
    expect(await links.unlink(customerId)).toBe('unlinked');
    expect(fake.tokenCalls).toContain('https://portal.test/revoke');
    expect(await pending).toMatchObject({
      ok: false,
      code: 'CONSENT_ENDED',
      message: 'Запрос отменён: доступ к Госуслугам отключён. Полученные с портала данные удалены.',
    });
    expect(await vault()).toHaveLength(0);
    const history = await links.history(customerId);
    expect(history.map((e) => [e.kind, e.seen_at !== null])).toEqual([['unlinked', true]]);
    expect(told).toEqual([]);
    // The portal's own webhook that follows finds nothing left and tells nobody.
    expect(await revoke('msg_4')).toBe('handled');
    expect(told).toEqual([]);
    expect(await links.history(customerId)).toHaveLength(1);
  });
});
