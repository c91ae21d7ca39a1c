import type { Kysely } from 'kysely';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../../platform/clock.js';
import { migrateToLatest } from '../../platform/db/index.js';
import { createOidcAdapterClass } from './oidc-adapter.js';
import { createOidcStore, createOidcTables, type OidcTables } from './oidc.store.js';

describeEachEngine('oidc adapter', (engine) => {
  let database: FreshDatabase<OidcTables>;
  let clock: ReturnType<typeof manualClock>;
  let adapter: (model: string) => Adapter;

  beforeEach(async () => {
    clock = manualClock('2026-12-01T09:00:00Z');
    database = await freshDatabase<OidcTables>(engine);
    await migrateToLatest(database, {
      '0001_oidc': { up: (db: Kysely<never>) => createOidcTables(db) },
    });
    const DatabaseAdapter = createOidcAdapterClass(createOidcStore(database.db), clock);
    adapter = (model) => new DatabaseAdapter(model);
  });
  afterEach(async () => {
    await database.close();
  });

  const token = (grantId: string, extra: Partial<AdapterPayload> = {}): AdapterPayload => ({
    kind: 'AccessToken',
    jti: `jti-${grantId}`,
    accountId: 'citizen-1',
    clientId: 'partner-bank',
    grantId,
    scope: 'openid fullname',
    ...extra,
  });

  it('finds what it stored, field for field', async () => {
    const payload = token('grant-1', {
      'x5t#S256': 'thumb',
      extra: { consent_id: 'consent-1' },
    });
    await adapter('AccessToken').upsert('at-1', payload, 600);
    expect(await adapter('AccessToken').find('at-1')).toEqual(payload);
    expect(await adapter('AccessToken').find('at-unknown')).toBeUndefined();
    // Models are separate namespaces.
    expect(await adapter('RefreshToken').find('at-1')).toBeUndefined();
  });

  it('replaces the payload on a second upsert of the same id', async () => {
    await adapter('Session').upsert('s-1', { kind: 'Session', uid: 'uid-1', accountId: 'a' }, 600);
    await adapter('Session').upsert('s-1', { kind: 'Session', uid: 'uid-2', accountId: 'b' }, 600);
    expect(await adapter('Session').find('s-1')).toEqual({
      kind: 'Session',
      uid: 'uid-2',
      accountId: 'b',
    });
    expect(await adapter('Session').findByUid('uid-1')).toBeUndefined();
    expect((await adapter('Session').findByUid('uid-2'))?.accountId).toBe('b');
  });

  it('stops finding a payload when it expires', async () => {
    await adapter('AuthorizationCode').upsert('code-1', token('grant-1'), 60);
    clock.advance(59_999);
    expect(await adapter('AuthorizationCode').find('code-1')).toBeDefined();
    clock.advance(1);
    expect(await adapter('AuthorizationCode').find('code-1')).toBeUndefined();
  });

  it('keeps a payload stored without expiry', async () => {
    await adapter('Client').upsert('partner-bank', { client_id: 'partner-bank' } as AdapterPayload);
    clock.advance(10 * 365 * 86_400_000);
    expect(await adapter('Client').find('partner-bank')).toEqual({ client_id: 'partner-bank' });
  });

  it('marks a consumed payload with the time of consumption, in seconds', async () => {
    await adapter('AuthorizationCode').upsert('code-1', token('grant-1'), 60);
    expect((await adapter('AuthorizationCode').find('code-1'))?.consumed).toBeUndefined();
    clock.advance(5_500);
    await adapter('AuthorizationCode').consume('code-1');
    const found = await adapter('AuthorizationCode').find('code-1');
    expect(found?.consumed).toBe(Math.floor(Date.parse('2026-12-01T09:00:05.500Z') / 1000));
    expect(found).toMatchObject(token('grant-1'));
  });

  it('finds by uid and by user code within the model, until expiry', async () => {
    await adapter('Session').upsert('s-1', { kind: 'Session', uid: 'uid-1' }, 120);
    await adapter('DeviceCode').upsert('dc-1', { kind: 'DeviceCode', userCode: 'ABCD-EFGH' }, 60);

    expect((await adapter('Session').findByUid('uid-1'))?.kind).toBe('Session');
    expect(await adapter('Session').findByUid('uid-2')).toBeUndefined();
    expect(await adapter('Interaction').findByUid('uid-1')).toBeUndefined();
    expect((await adapter('DeviceCode').findByUserCode!('ABCD-EFGH'))?.kind).toBe('DeviceCode');
    expect(await adapter('DeviceCode').findByUserCode!('ZZZZ-ZZZZ')).toBeUndefined();

    clock.advance(60_000);
    expect(await adapter('DeviceCode').findByUserCode!('ABCD-EFGH')).toBeUndefined();
    expect(await adapter('Session').findByUid('uid-1')).toBeDefined();
  });

  it('revokeByGrantId removes every payload of that grant, in every model, and nothing else', async () => {
    await adapter('AuthorizationCode').upsert('code-1', token('grant-1'), 60);
    await adapter('AccessToken').upsert('at-1', token('grant-1'), 600);
    await adapter('RefreshToken').upsert('rt-1', token('grant-1'), 86_400);
    await adapter('AccessToken').upsert('at-2', token('grant-2'), 600);
    await adapter('RefreshToken').upsert('rt-2', token('grant-2'), 86_400);
    await adapter('Grant').upsert('grant-1', { kind: 'Grant', accountId: 'citizen-1' }, 86_400);
    await adapter('Session').upsert('s-1', { kind: 'Session', uid: 'uid-1' }, 600);

    await adapter('AccessToken').revokeByGrantId('grant-1');

    expect(await adapter('AuthorizationCode').find('code-1')).toBeUndefined();
    expect(await adapter('AccessToken').find('at-1')).toBeUndefined();
    expect(await adapter('RefreshToken').find('rt-1')).toBeUndefined();
    expect(await adapter('AccessToken').find('at-2')).toBeDefined();
    expect(await adapter('RefreshToken').find('rt-2')).toBeDefined();
    expect(await adapter('Grant').find('grant-1')).toBeDefined();
    expect(await adapter('Session').find('s-1')).toBeDefined();
    const left = await database.db.selectFrom('oidc_payloads').select(['model', 'id']).execute();
    expect(left.map((r) => `${r.model}/${r.id}`).sort()).toEqual([
      'AccessToken/at-2',
      'Grant/grant-1',
      'RefreshToken/rt-2',
      'Session/s-1',
    ]);
  });

  it('removeGrant (our revocation or expiry) removes the grant itself too, and nothing else', async () => {
    await adapter('AccessToken').upsert('at-1', token('grant-1'), 600);
    await adapter('Grant').upsert('grant-1', { kind: 'Grant', accountId: 'citizen-1' }, 86_400);
    await adapter('Grant').upsert('grant-2', { kind: 'Grant', accountId: 'citizen-1' }, 86_400);

    await createOidcStore(database.db).removeGrant('grant-1');

    const left = await database.db.selectFrom('oidc_payloads').select(['model', 'id']).execute();
    expect(left.map((r) => `${r.model}/${r.id}`)).toEqual(['Grant/grant-2']);
  });

  it('destroy removes that payload only', async () => {
    await adapter('AccessToken').upsert('same-id', token('grant-1'), 600);
    await adapter('RefreshToken').upsert('same-id', token('grant-1'), 600);
    await adapter('AccessToken').upsert('at-2', token('grant-1'), 600);

    await adapter('AccessToken').destroy('same-id');

    expect(await adapter('AccessToken').find('same-id')).toBeUndefined();
    expect(await adapter('RefreshToken').find('same-id')).toBeDefined();
    expect(await adapter('AccessToken').find('at-2')).toBeDefined();
  });
});
