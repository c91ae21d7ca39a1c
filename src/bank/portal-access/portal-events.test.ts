import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import { testBank } from '../../../test/support/services.js';
import { recordAad, serializeSealed } from '../../platform/crypto/index.js';
import { createPortalEventStore, type PortalEventTables } from './portal-events.store.js';
import type { PortalLinkTables } from './portal-link.store.js';

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

describeEachEngine('bank: the portal webhook receiver', (engine) => {
  let svc: Awaited<ReturnType<typeof testBank>>;

  beforeEach(async () => {
    svc = await testBank(engine);
    const store = createPortalEventStore(svc.runtime.db as unknown as Kysely<PortalEventTables>);
    await store.saveSubscription({
      endpoint_id: 'ep_1',
      secret: serializeSealed(
        await svc.runtime.sealer.seal(SECRET, recordAad('portal_webhook', 'portal', 'secret')),
      ),
      registered_at: svc.clock.now(),
    });
    // A linked customer whose consent is c-1 (the row's sealed fields are not read here).
    const customerId = (await svc.app.customers.findIdByUsername('ivanov'))!;
    await (svc.runtime.db as unknown as Kysely<PortalLinkTables>)
      .insertInto('portal_links')
      .values({
        customer_id: customerId,
        consent_id: 'c-1',
        portal_sub: 'sub',
        scopes: ['fullname'],
        consent_expires_at: svc.clock.now(),
        linked_at: svc.clock.now(),
        subject_key: '{}',
        tokens: '{}',
        data: '{}',
        data_fetched_at: svc.clock.now(),
      })
      .execute();
  });
  afterEach(async () => {
    await svc.close();
  });

  const deliver = (id: string, body: object, secret = SECRET, at = new Date()) => {
    const payload = JSON.stringify(body);
    return svc.app.inject({
      method: 'POST',
      url: '/webhooks/portal',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(secret).sign(id, at, payload),
      },
      payload,
    });
  };
  const linked = async () =>
    (
      await (svc.runtime.db as unknown as Kysely<PortalLinkTables>)
        .selectFrom('portal_links')
        .selectAll()
        .execute()
    ).length;

  it('consent.revoked deletes the data obtained under that consent; a redelivery changes nothing', async () => {
    const event = {
      type: 'consent.revoked',
      timestamp: new Date().toISOString(),
      data: { consent_id: 'c-1' },
    };
    expect((await deliver('msg_1', event)).statusCode).toBe(204);
    expect(await linked()).toBe(0);
    expect((await deliver('msg_1', event)).statusCode).toBe(200);
  });

  it('refuses a forged signature, a stale timestamp and a tampered body, and changes nothing', async () => {
    const event = {
      type: 'consent.revoked',
      timestamp: new Date().toISOString(),
      data: { consent_id: 'c-1' },
    };
    const forged = await deliver('msg_2', event, `whsec_${randomBytes(24).toString('base64')}`);
    expect(forged.statusCode).toBe(401);
    expect(forged.json()).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
    const stale = await deliver('msg_3', event, SECRET, new Date(Date.now() - 10 * 60_000));
    expect(stale.statusCode).toBe(401);
    const good = await deliver('msg_4', { ...event, data: { consent_id: 'other' } });
    expect(good.statusCode).toBe(204);
    expect(await linked()).toBe(1);
    // The same signature over a different body.
    const payload = JSON.stringify(event);
    const at = new Date();
    const tampered = await svc.app.inject({
      method: 'POST',
      url: '/webhooks/portal',
      headers: {
        'content-type': 'application/json',
        'webhook-id': 'msg_5',
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': new Webhook(SECRET).sign(
          'msg_5',
          at,
          JSON.stringify({ ...event, type: 'x' }),
        ),
      },
      payload,
    });
    expect(tampered.statusCode).toBe(401);
    expect(await linked()).toBe(1);
  });
});
