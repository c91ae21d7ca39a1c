import { X509Certificate } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  describeEachEngine,
  freshDatabase,
  type FreshDatabase,
} from '../../../test/support/databases.js';
import { manualClock } from '../../platform/clock.js';
import { migrateToLatest } from '../../platform/db/index.js';
import { AppError } from '../../platform/http/errors.js';
import { randomIds } from '../../platform/ids.js';
import {
  certificateThumbprint,
  createCertificateAuthority,
  createCertificateSigningRequest,
  loadCertificateAuthority,
  type CertificateAuthority,
} from '../../platform/pki/index.js';
import type { PortalDB } from '../db.js';
import { portalMigrations } from '../migrations.js';
import { createOidcStore } from '../oidc/oidc.store.js';
import { createPartnerService, type PartnerRegistration } from './partner.service.js';
import { createPartnerStore } from './partner.store.js';

const DAY_MS = 86_400_000;

describeEachEngine('partner registration', (engine) => {
  const clock = manualClock('2026-12-01T09:00:00Z');
  let authority: CertificateAuthority;
  let csrPem: string;
  let signingJwk: JWK;
  let privateJwk: JWK;
  let database: FreshDatabase<PortalDB>;

  beforeAll(async () => {
    const ca = await createCertificateAuthority({
      commonName: 'Soglasie Test CA',
      validityDays: 3650,
      clock,
    });
    authority = await loadCertificateAuthority(ca.certPem, ca.keyPem, { clock });
    ({ csrPem } = await createCertificateSigningRequest({ commonName: 'bank.test' }));
    const keys = await generateKeyPair('ES256', { extractable: true });
    signingJwk = { ...(await exportJWK(keys.publicKey)), kid: 'bank-1', alg: 'ES256' };
    privateJwk = { ...(await exportJWK(keys.privateKey)), kid: 'bank-1', alg: 'ES256' };
  });

  beforeEach(async () => {
    database = await freshDatabase<PortalDB>(engine);
    await migrateToLatest(database, portalMigrations);
  });
  afterEach(async () => {
    await database.close();
  });

  const service = (allowHttpRedirects = false) =>
    createPartnerService({
      partners: createPartnerStore(database.db),
      oidc: createOidcStore(database.db),
      authority,
      clock,
      ids: randomIds,
      allowHttpRedirects,
    });

  const registration = (overrides: Partial<PartnerRegistration> = {}): PartnerRegistration => ({
    name: 'АО «Тестовый банк»',
    redirectUris: ['https://bank.test/portal/callback'],
    signingJwk,
    csrPem,
    ...overrides,
  });

  async function refusal(input: PartnerRegistration, allowHttp = false): Promise<AppError> {
    try {
      await service(allowHttp).register(input);
    } catch (err) {
      if (err instanceof AppError) return err;
      throw err;
    }
    throw new Error('expected the registration to be refused');
  }

  async function counts() {
    const clients = await database.db
      .selectFrom('oidc_payloads')
      .select('id')
      .where('model', '=', 'Client')
      .execute();
    const partners = await database.db.selectFrom('partners').select('client_id').execute();
    return { clients: clients.length, partners: partners.length };
  }

  it('registers a FAPI 2.0 client with exactly the given redirect URIs', async () => {
    const redirectUris = ['https://bank.test/portal/callback', 'https://bank.test/other'];
    const registered = await service().register(registration({ redirectUris }));
    expect(registered.clientId).toMatch(/^partner-[A-Za-z0-9_-]+$/);

    const row = await database.db
      .selectFrom('oidc_payloads')
      .selectAll()
      .where('model', '=', 'Client')
      .where('id', '=', registered.clientId)
      .executeTakeFirstOrThrow();
    expect(row.expires_at).toBeNull();
    expect(row.payload).toMatchObject({
      client_id: registered.clientId,
      client_name: 'АО «Тестовый банк»',
      redirect_uris: redirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      tls_client_certificate_bound_access_tokens: true,
      subject_type: 'pairwise',
      jwks: { keys: [signingJwk] },
      authorization_details_types: ['soglasie_consent'],
    });
  });

  it('records the partner under the thumbprint of the certificate it was issued', async () => {
    const registered = await service().register(registration());
    const thumbprint = certificateThumbprint(registered.certPem);
    expect(registered.thumbprint).toBe(thumbprint);

    const partner = await service().byThumbprint(thumbprint);
    expect(partner).toMatchObject({
      client_id: registered.clientId,
      name: 'АО «Тестовый банк»',
      cert_thumbprint: thumbprint,
      status: 'active',
    });
    const cert = new X509Certificate(registered.certPem);
    expect(partner!.cert_serial.toLowerCase()).toBe(cert.serialNumber.toLowerCase());
    expect(cert.subject).toContain(`CN=${registered.clientId}`);
    expect(new Date(partner!.cert_expires_at).toISOString()).toBe(
      new Date(cert.validTo).toISOString(),
    );
    expect(new Date(partner!.cert_expires_at).getTime()).toBe(clock.now().getTime() + 365 * DAY_MS);
    expect((await service().byClientId(registered.clientId))?.cert_thumbprint).toBe(thumbprint);
  });

  it('records the real end of a certificate cut short by a CA that expires first', async () => {
    const shortCa = await createCertificateAuthority({
      commonName: 'Short CA',
      validityDays: 30,
      clock,
    });
    const short = createPartnerService({
      partners: createPartnerStore(database.db),
      oidc: createOidcStore(database.db),
      authority: await loadCertificateAuthority(shortCa.certPem, shortCa.keyPem, { clock }),
      clock,
      ids: randomIds,
      allowHttpRedirects: false,
    });
    const registered = await short.register(registration());
    const partner = await short.byClientId(registered.clientId);
    const notAfter = new Date(new X509Certificate(registered.certPem).validTo);
    expect(new Date(partner!.cert_expires_at).toISOString()).toBe(notAfter.toISOString());
    expect(notAfter.getTime()).toBeLessThanOrEqual(clock.now().getTime() + 30 * DAY_MS);
  });

  it('gives each partner its own client id and certificate', async () => {
    const first = await service().register(registration());
    const other = await createCertificateSigningRequest({ commonName: 'bank2.test' });
    const second = await service().register(registration({ csrPem: other.csrPem }));
    expect(second.clientId).not.toBe(first.clientId);
    expect(second.thumbprint).not.toBe(first.thumbprint);
    expect(await counts()).toEqual({ clients: 2, partners: 2 });
  });

  it('accepts http on localhost only when http redirects are allowed (demo)', async () => {
    const registered = await service(true).register(
      registration({ redirectUris: ['http://localhost:3001/cb', 'http://127.0.0.1:3001/cb'] }),
    );
    const row = await database.db
      .selectFrom('oidc_payloads')
      .select('payload')
      .where('id', '=', registered.clientId)
      .executeTakeFirstOrThrow();
    expect(row.payload.redirect_uris).toEqual([
      'http://localhost:3001/cb',
      'http://127.0.0.1:3001/cb',
    ]);
  });

  it.each([
    ['a redirect URI with a fragment', { redirectUris: ['https://bank.test/cb#frag'] }, true],
    ['http on a host that is not loopback', { redirectUris: ['http://bank.test/cb'] }, true],
    ['http on localhost outside demo mode', { redirectUris: ['http://localhost:3001/cb'] }, false],
    ['a redirect URI that is not a URL', { redirectUris: ['/callback'] }, true],
    ['another scheme', { redirectUris: ['bank-app://callback'] }, true],
    ['no redirect URI', { redirectUris: [] }, true],
    [
      'eleven redirect URIs',
      { redirectUris: Array.from({ length: 11 }, (_, i) => `https://bank.test/cb${i}`) },
      true,
    ],
    ['an empty name', { name: '   ' }, true],
  ])('refuses %s with INVALID_PARTNER and stores nothing', async (_what, overrides, allowHttp) => {
    const err = await refusal(registration(overrides as Partial<PartnerRegistration>), allowHttp);
    expect(err.code).toBe('INVALID_PARTNER');
    expect(err.status).toBe(400);
    expect(await counts()).toEqual({ clients: 0, partners: 0 });
  });

  it('refuses a private signing key (a JWK with d) and stores nothing', async () => {
    const err = await refusal(registration({ signingJwk: privateJwk }));
    expect(err.code).toBe('INVALID_PARTNER');
    expect(err.message).toContain('public key only');
    expect(await counts()).toEqual({ clients: 0, partners: 0 });
  });

  it('refuses a signing key without kid, or of a symmetric type', async () => {
    const withoutKid: JWK = { ...signingJwk };
    delete withoutKid.kid;
    for (const jwk of [withoutKid, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' } as JWK]) {
      const err = await refusal(registration({ signingJwk: jwk }));
      expect(err.code).toBe('INVALID_PARTNER');
    }
    expect(await counts()).toEqual({ clients: 0, partners: 0 });
  });

  const CONNECT = {
    client_ref_label: 'Номер клиента',
    request: {
      sysname: 'DEBIT_CARD',
      purposes: ['Оформление дебетовой карты'],
      scopes: ['fullname', 'birthdate', 'contacts'],
      optional_scopes: ['contacts'],
    },
  };

  it('J1: a partner that accepts portal connections gets the consent grant and is listed', async () => {
    const plain = await service().register(registration());
    const connecting = await service().register(registration({ portalConnect: CONNECT }));
    const payload = await database.db
      .selectFrom('oidc_payloads')
      .select('payload')
      .where('id', '=', connecting.clientId)
      .executeTakeFirstOrThrow();
    expect((payload.payload as { grant_types: string[] }).grant_types).toContain(
      'urn:soglasie:grant-type:consent',
    );
    const listed = await service().listConnectable();
    expect(listed.map((p) => p.client_id)).toEqual([connecting.clientId]);
    expect(listed[0]!.portal_connect).toMatchObject({
      client_ref_label: 'Номер клиента',
      request: { type: 'soglasie_consent', sysname: 'DEBIT_CARD' },
    });
    expect(listed.map((p) => p.client_id)).not.toContain(plain.clientId);
  });

  it('J1: refuses a connection request the consent screen could not show, or with DPoP', async () => {
    for (const portalConnect of [
      { ...CONNECT, request: { ...CONNECT.request, scopes: ['fullname', 'salary'] } },
      { ...CONNECT, request: { ...CONNECT.request, sysname: 'LOTTERY' } },
      { ...CONNECT, client_ref_label: ' ' },
    ]) {
      const err = await refusal(registration({ portalConnect }));
      expect(err.code).toBe('INVALID_PARTNER');
    }
    const dpop = await refusal(registration({ portalConnect: CONNECT, senderConstraint: 'dpop' }));
    expect(dpop.message).toContain('certificate-bound');
    expect(await counts()).toEqual({ clients: 0, partners: 0 });
  });

  it('accepts ten redirect URIs', async () => {
    const redirectUris = Array.from({ length: 10 }, (_, i) => `https://bank.test/cb${i}`);
    await service().register(registration({ redirectUris }));
    expect(await counts()).toEqual({ clients: 1, partners: 1 });
  });
});
