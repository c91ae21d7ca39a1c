import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine } from '../../../test/support/databases.js';
import { Browser, codeFromOutbox, testPortal } from '../../../test/support/services.js';
import { openCheckpoint, parseVerifierKey } from '../../platform/audit/checkpoint.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../platform/audit/merkle.js';
import { DEMO_PASSWORD, PORTAL_PERSONAS } from '../personas.js';
import type { ConsentRequest } from './consent.js';

const REQUEST: ConsentRequest = {
  type: 'CREDIT',
  purposes: ['Рассмотрение заявки на кредит'],
  actions: ['READ'],
  scopes: ['fullname'],
  optionalScopes: [],
  durationDays: 30,
};

/** J12: «Кто запрашивал мои данные» links each read to its proof in the signed audit log. */
describeEachEngine('access history proofs', (engine) => {
  let svc: Awaited<ReturnType<typeof testPortal>>;
  let browser: Browser;
  /** Leaf indexes: Ivanov's two reads, Ivanov's own consent entry, Petrova's read. */
  let leaf: Record<'ivanovRead' | 'ivanovSecondRead' | 'ivanovGranted' | 'petrovaRead', number>;
  let size: number;

  beforeEach(async () => {
    svc = await testPortal(engine);
    browser = new Browser(svc.app);
    const { app } = svc;
    const ivanov = (await app.citizens.findIdByIdentifier(PORTAL_PERSONAS[0]!.personal.phone))!;
    const petrova = (await app.citizens.findIdByIdentifier(PORTAL_PERSONAS[1]!.personal.phone))!;
    const grant = (citizenId: string, grantId: string) =>
      app.consents.grant({
        citizenId,
        clientId: 'partner-bank',
        grantId,
        request: REQUEST,
        approvedScopes: ['fullname'],
      });
    const mine = await grant(ivanov, 'g1');
    const theirs = await grant(petrova, 'g2');
    const read = (consentId: string) =>
      app.audit.append({
        actor: 'partner:partner-bank',
        action: 'data.read',
        subject: `consent:${consentId}`,
        details: { resource: 'person', fields: ['fullname'], token: 'jti-1' },
      });
    await app.audit.append({
      actor: `citizen:${ivanov}`,
      action: 'consent.granted',
      subject: `consent:${mine.id}`,
    });
    await read(mine.id);
    await read(mine.id);
    await read(theirs.id);
    const index = async (subject: string, action: string) =>
      (await app.audit.list({ subject, action })).map((r) => Number(r.leaf_index)).reverse();
    const [ivanovRead, ivanovSecondRead] = await index(`consent:${mine.id}`, 'data.read');
    leaf = {
      ivanovRead: ivanovRead!,
      ivanovSecondRead: ivanovSecondRead!,
      ivanovGranted: (await index(`consent:${mine.id}`, 'consent.granted'))[0]!,
      petrovaRead: (await index(`consent:${theirs.id}`, 'data.read'))[0]!,
    };
    size = leaf.petrovaRead + 1;
  });
  afterEach(async () => {
    await svc.close();
  });

  async function logInIvanov() {
    await browser.get('/login');
    const res = await browser.post('/login', {
      username: PORTAL_PERSONAS[0]!.personal.phone,
      password: DEMO_PASSWORD,
    });
    await browser.follow(res);
    const code = await codeFromOutbox(svc.app, PORTAL_PERSONAS[0]!.personal.phone);
    await browser.post('/login/code', { code });
  }

  it('shows «Доказательство» per read, and the proof checks against the published key', async () => {
    await logInIvanov();
    const page = await browser.get('/access/log');
    expect(page.statusCode).toBe(200);
    const links = [
      ...page.body.matchAll(/href="(\/access\/log\/proof\/\d+)" data-testid="access-log-proof"/g),
    ];
    expect(links.map((m) => m[1])).toEqual([
      `/access/log/proof/${leaf.ivanovSecondRead}`,
      `/access/log/proof/${leaf.ivanovRead}`,
    ]);
    expect(page.body).toContain('Доказательство');

    const res = await browser.get(links[1]![1]!);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const proof = res.json() as {
      leaf_index: number;
      leaf: string;
      leaf_hash: string;
      tree_size: number;
      root_hash: string;
      checkpoint: string;
      checkpoint_signature: string;
      verifier_key: string;
      audit_path: string[];
    };
    // Logging in adds entries too, so the checkpoint published for the proof covers those.
    expect(proof.leaf_index).toBe(leaf.ivanovRead);
    expect(proof.tree_size).toBeGreaterThanOrEqual(size);

    // Checked with nothing but the key the portal publishes at /audit/key.
    const key = await svc.app.inject({ method: 'GET', url: '/audit/key' });
    expect(key.body.trim()).toBe(proof.verifier_key);
    const checkpoint = openCheckpoint(proof.checkpoint, parseVerifierKey(key.body));
    const b = (s: string) => Buffer.from(s, 'base64');
    expect(leafHash(b(proof.leaf)).equals(b(proof.leaf_hash))).toBe(true);
    expect(
      verifyInclusion(
        proof.leaf_index,
        checkpoint.size,
        b(proof.leaf_hash),
        proof.audit_path.map(b),
        checkpoint.root,
      ),
    ).toBe(true);

    const exported = (await browser.get('/access/log.json')).json() as {
      entries: { leaf_index: number }[];
    };
    expect(exported.entries.map((e) => e.leaf_index)).toEqual([
      leaf.ivanovSecondRead,
      leaf.ivanovRead,
    ]);
  });

  it('answers 404 for anyone else’s entry, for entries that are not reads, and for no entry', async () => {
    await logInIvanov();
    for (const index of [leaf.petrovaRead, leaf.ivanovGranted, 9999]) {
      expect((await browser.get(`/access/log/proof/${index}`)).statusCode, String(index)).toBe(404);
    }
    expect((await browser.get('/access/log/proof/-1')).statusCode).toBe(400);
    // Signed out: the login page, not a proof.
    const anonymous = await new Browser(svc.app).get(`/access/log/proof/${leaf.ivanovRead}`);
    expect(anonymous.statusCode).toBe(303);
  });

  it('publishes the newest checkpoint and consistency proofs between checkpoints', async () => {
    expect((await svc.app.inject({ method: 'GET', url: '/audit/checkpoint' })).statusCode).toBe(
      404,
    );
    const first = (await svc.app.auditTree.publish())!;
    await svc.app.audit.append({ actor: 'system', action: 'test.more' });
    const second = (await svc.app.auditTree.publish())!;
    const latest = await svc.app.inject({ method: 'GET', url: '/audit/checkpoint' });
    expect(latest.body).toBe(second.note);

    const res = await svc.app.inject({
      method: 'GET',
      url: `/audit/consistency?first=${first.size}&second=${second.size}`,
    });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { consistency_path: string[] };
    expect(
      verifyConsistency(
        first.size,
        second.size,
        first.root,
        second.root,
        body.consistency_path.map((p) => Buffer.from(p, 'base64')),
      ),
    ).toBe(true);
    for (const q of ['first=5&second=4', `first=${first.size}&second=77`, 'first=0&second=4']) {
      expect(
        (await svc.app.inject({ method: 'GET', url: `/audit/consistency?${q}` })).statusCode,
      ).toBeGreaterThanOrEqual(400);
    }
  });
});
