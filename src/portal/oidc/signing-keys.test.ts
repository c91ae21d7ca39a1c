import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../../platform/clock.js';
import { createSealer, memoryKeyring } from '../../platform/crypto/index.js';
import { migrateToLatest, openDatabase, type Database } from '../../platform/db/index.js';
import type { PortalDB } from '../db.js';
import { portalMigrations } from '../migrations.js';
import { createOidcStore } from './oidc.store.js';
import {
  createSigningKeys,
  listSigningKeys,
  rotateSigningKey,
  SIGNING_KEY_TIMING,
  type SigningKeyEvent,
} from './signing-keys.js';

const MIN = 60_000;

/*
 * The life of a token signing key: next (published, not signing) → current (signing) →
 * retired (published until the tokens it signed have expired) → deleted. Time is the
 * injected clock; two "instances" are two SigningKeys on one database.
 */
describeEachEngine('token signing keys: next → current → retired', (engine) => {
  let database: FreshDatabase<PortalDB>;
  let clock: ReturnType<typeof manualClock>;
  const sealer = createSealer(memoryKeyring());
  let events: SigningKeyEvent[];

  beforeEach(async () => {
    database = await freshDatabase<PortalDB>(engine);
    await migrateToLatest(database, portalMigrations);
    clock = manualClock('2026-12-01T09:00:00Z');
    events = [];
  });
  afterEach(async () => {
    await database.close();
  });

  const store = () => createOidcStore(database.db);
  const instance = () =>
    createSigningKeys({ store: store(), sealer, clock, onEvent: (e) => void events.push(e) });
  const kids = (snapshot: { published: { kid?: string }[] }) =>
    snapshot.published.map((k) => k.kid);

  it('starts with a current key that signs and a next key already published', async () => {
    const keys = instance();
    const snapshot = await keys.snapshot();
    const [current, next] = await listSigningKeys(store());
    expect(current).toMatchObject({ state: 'current', publishedAt: clock.now() });
    expect(next).toMatchObject({ state: 'next', publishedAt: clock.now() });
    expect(snapshot.currentKid).toBe(current!.kid);
    expect(kids(snapshot)).toEqual([current!.kid, next!.kid]);
    // Public halves only.
    expect(snapshot.published.every((k) => !('d' in k))).toBe(true);
    expect((await keys.privateJwk(current!.kid)).d).toBeTypeOf('string');
    expect(events.map((e) => e.type)).toEqual(['signing_key.created', 'signing_key.created']);
  });

  it('keys rotate promotes a next key published for the lead time at once', async () => {
    const keys = instance();
    const before = await keys.snapshot();
    const [k1, k2] = kids(before);
    clock.advance(SIGNING_KEY_TIMING.publishLeadMs);
    expect((await keys.snapshot()).currentKid).toBe(k1); // a refresh: no rotation asked for
    const result = await rotateSigningKey({ store: store(), sealer, clock });
    expect(result).toMatchObject({ promoted: true, retiredKid: k1, currentKid: k2, early: false });
    if (!result.promoted) throw new Error('unreachable');
    expect(result.publishUntil).toEqual(
      new Date(clock.now().getTime() + SIGNING_KEY_TIMING.retiredPublishMs),
    );

    // The running instance still signs with k1 until its next refresh...
    expect((await keys.snapshot()).currentKid).toBe(k1);
    clock.advance(SIGNING_KEY_TIMING.refreshMs);
    const after = await keys.snapshot();
    // ...then k2 signs; k1 stays published (retired) and the new next key is published.
    expect(after.currentKid).toBe(k2);
    expect(kids(after)).toEqual([k2, result.nextKid, k1]);
    const listed = await listSigningKeys(store());
    expect(listed.map((k) => [k.kid, k.state])).toEqual([
      [k2, 'current'],
      [result.nextKid, 'next'],
      [k1, 'retired'],
    ]);
    expect(listed[1]!.publishedAt).toEqual(clock.now());
  });

  it('keys rotate before the lead time only asks; the running portal promotes when due', async () => {
    const keys = instance();
    const [k1, k2] = kids(await keys.snapshot());
    clock.advance(10 * MIN);
    const result = await rotateSigningKey({ store: store(), sealer, clock });
    expect(result).toEqual({
      promoted: false,
      currentKid: k1,
      nextKid: k2,
      promoteAt: new Date(Date.parse('2026-12-01T09:00:00Z') + SIGNING_KEY_TIMING.publishLeadMs),
    });
    // Not yet: 49 minutes later nothing has changed.
    clock.advance(49 * MIN);
    expect((await keys.snapshot()).currentKid).toBe(k1);
    // At the due time the first refresh promotes it.
    clock.advance(MIN);
    const after = await keys.snapshot();
    expect(after.currentKid).toBe(k2);
    expect(kids(after)).toContain(k1);
    expect(events.filter((e) => e.type === 'signing_key.promoted')).toEqual([
      expect.objectContaining({ from: k1, to: k2 }),
    ]);
  });

  it('a key never published by a running portal is promoted only with --immediately', async () => {
    // keys rotate on a fresh database with the portal stopped: nothing was ever served.
    const first = await rotateSigningKey({ store: store(), sealer, clock });
    expect(first).toMatchObject({ promoted: false, promoteAt: null });
    clock.advance(24 * 60 * MIN);
    expect(await rotateSigningKey({ store: store(), sealer, clock })).toMatchObject({
      promoted: false,
      promoteAt: null,
    });
    const forced = await rotateSigningKey({ store: store(), sealer, clock, immediately: true });
    expect(forced).toMatchObject({ promoted: true, early: true, currentKid: first.nextKid });
  });

  it('a retired key leaves the JWKS when its window ends, and is deleted', async () => {
    const keys = instance();
    const [k1] = kids(await keys.snapshot());
    await rotateSigningKey({ store: store(), sealer, clock, immediately: true });
    clock.advance(SIGNING_KEY_TIMING.retiredPublishMs - 1);
    expect(kids(await keys.snapshot())).toContain(k1);
    clock.advance(1);
    // The cached snapshot may be up to refreshMs old; a refresh drops k1.
    clock.advance(SIGNING_KEY_TIMING.refreshMs);
    const later = await keys.snapshot();
    expect(kids(later)).not.toContain(k1);
    expect((await listSigningKeys(store())).map((k) => k.kid)).not.toContain(k1);
    await expect(keys.privateJwk(k1!)).rejects.toThrow(/gone/);
  });

  it('the retired window outlives every token the old key signed', () => {
    // Access and ID tokens live 10 minutes (provider.ts); other instances switch within
    // refreshMs of the promotion.
    expect(SIGNING_KEY_TIMING.retiredPublishMs).toBeGreaterThanOrEqual(
      10 * MIN + SIGNING_KEY_TIMING.refreshMs + MIN,
    );
  });

  it('two instances due at once promote exactly once', async () => {
    const a = instance();
    const b = instance();
    const [k1, k2] = kids(await a.snapshot());
    await b.snapshot();
    await rotateSigningKey({ store: store(), sealer, clock });
    clock.advance(SIGNING_KEY_TIMING.publishLeadMs);
    const [sa, sb] = await Promise.all([a.snapshot(), b.snapshot()]);
    expect(sa.currentKid).toBe(k2);
    expect(sb.currentKid).toBe(k2);
    const listed = await listSigningKeys(store());
    expect(listed.filter((k) => k.state === 'current')).toHaveLength(1);
    expect(listed.filter((k) => k.state === 'next')).toHaveLength(1);
    expect(listed.find((k) => k.kid === k1)?.state).toBe('retired');
    expect(events.filter((e) => e.type === 'signing_key.promoted')).toHaveLength(1);
  });

  // Two connections to one server: PostgreSQL only (an embedded database has one).
  if (engine.name === 'postgres')
    it('two processes promoting on one PostgreSQL database at once: one wins, nothing breaks', async () => {
      const other: Database<PortalDB> = await openDatabase<PortalDB>({
        name: 'other',
        url: database.url!,
      });
      try {
        const keys = instance();
        await keys.snapshot();
        const results = await Promise.all([
          rotateSigningKey({ store: store(), sealer, clock, immediately: true }),
          rotateSigningKey({ store: createOidcStore(other.db), sealer, clock, immediately: true }),
        ]);
        expect(results.every((r) => r.promoted)).toBe(true);
        const listed = await listSigningKeys(store());
        expect(listed.filter((k) => k.state === 'current')).toHaveLength(1);
        expect(listed.filter((k) => k.state === 'next')).toHaveLength(1);
        expect(listed.filter((k) => k.state === 'retired')).toHaveLength(1);
      } finally {
        await other.close();
      }
    });

  it('keeps serving the last good keys when the database is briefly unreachable', async () => {
    const errors: unknown[] = [];
    let down = false;
    const base = store();
    const flaky = {
      ...base,
      listKeys: async () => {
        if (down) throw new Error('connection lost');
        return base.listKeys();
      },
    };
    const keys = createSigningKeys({ store: flaky, sealer, clock, onError: (e) => errors.push(e) });
    const good = await keys.snapshot();
    down = true;
    clock.advance(SIGNING_KEY_TIMING.refreshMs);
    expect((await keys.snapshot()).currentKid).toBe(good.currentKid);
    expect(errors).toHaveLength(1);
    // An instance that never loaded its keys cannot sign: it fails loudly.
    const fresh = createSigningKeys({ store: flaky, sealer, clock });
    await expect(fresh.snapshot()).rejects.toThrow('connection lost');
  });
});
