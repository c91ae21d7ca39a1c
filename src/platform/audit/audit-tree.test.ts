import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeEachEngine, freshDatabase } from '../../../test/support/databases.js';
import { manualClock } from '../clock.js';
import { migrateToLatest } from '../db/index.js';
import { createAuditLog, leafFields, type AuditTables } from './audit-log.js';
import { createAuditTree } from './audit-tree.js';
import { verifyAuditLog } from './audit-verify.js';
import { checkpointSigner, openCheckpoint, parseVerifierKey } from './checkpoint.js';
import { encodeLeaf } from './leaf.js';
import { MemoryTree, leafHash, verifyConsistency, verifyInclusion } from './merkle.js';
import { AUDIT_MIGRATIONS, auditFixture } from '../../../test/support/audit.js';

describeEachEngine('audit log Merkle tree', (engine) => {
  let f: Awaited<ReturnType<typeof auditFixture>>;
  beforeEach(async () => {
    f = await auditFixture(engine);
  });
  afterEach(async () => {
    await f.database.close();
  });

  /** The tree recomputed from the stored entries' content, as `audit verify` does. */
  async function recomputed(): Promise<MemoryTree> {
    const rows = await f.db.selectFrom('audit_log').selectAll().orderBy('leaf_index').execute();
    const tree = new MemoryTree();
    rows.forEach((row, i) => {
      expect(Number(row.leaf_index)).toBe(i);
      const hash = leafHash(encodeLeaf(leafFields(row, i)));
      expect(hash.equals(row.leaf_hash)).toBe(true);
      tree.append(hash);
    });
    return tree;
  }

  it('numbers entries densely and stores the hash of exactly what it stored', async () => {
    await f.log.append({
      actor: 'citizen:c1',
      action: 'consent.granted',
      subject: 'consent:k1',
      details: {
        scopes: ['fullname', 'birthdate'],
        nested: { z: 1, a: [true, null, 0.1, 1e21, -5e-7] },
        text: 'Ёлка «ёж» — 😀',
        when: new Date('2026-12-01T09:00:00Z'),
        dropped: undefined,
      },
    });
    f.clock.advance(1500);
    await f.appendMany(300);
    await f.log.append({ actor: 'system', action: 'nul\0and\ud800lone' });
    const tree = await recomputed();
    expect(tree.size).toBe(302);
    const first = await f.log.byLeafIndex(0);
    expect(first?.details).toEqual({
      scopes: ['fullname', 'birthdate'],
      nested: { z: 1, a: [true, null, 0.1, 1e21, -5e-7] },
      text: 'Ёлка «ёж» — 😀',
      when: '2026-12-01T09:00:00.000Z',
    });
    // Strings PostgreSQL cannot keep are made keepable, not fatal to the batch.
    expect((await f.log.byLeafIndex(301))?.action).toBe('nul\uFFFDand\uFFFDlone');
  });

  it('publishes signed checkpoints when the tree grew; proofs verify against them', async () => {
    expect(await f.tree.publish()).toBeUndefined(); // nothing to sign yet
    await f.appendMany(700);
    f.clock.advance(10_000);
    const c700 = (await f.tree.publish())!;
    expect(c700.size).toBe(700);
    expect(await f.tree.publish()).toBeUndefined(); // did not grow

    const signed = openCheckpoint(c700.note, f.signer);
    const tree = await recomputed();
    expect(signed).toMatchObject({ size: 700, time: new Date('2026-12-01T09:00:10Z') });
    expect(signed.root.equals(tree.root(700))).toBe(true);
    expect(c700.root.equals(signed.root)).toBe(true);

    // Complete subtrees of 256+ leaves are stored: two tiles and the node above them.
    const nodes = await f.db
      .selectFrom('audit_tree_nodes')
      .select(['level', 'idx'])
      .orderBy('level')
      .orderBy('idx')
      .execute();
    expect(nodes.map((n) => `${n.level}/${n.idx}`)).toEqual(['8/0', '8/1', '9/0']);

    for (const index of [0, 1, 255, 256, 511, 512, 600, 698, 699]) {
      const path = await f.tree.inclusionProof(index, 700);
      expect(path).toEqual(tree.inclusionProof(index, 700));
      const row = (await f.log.byLeafIndex(index))!;
      expect(verifyInclusion(index, 700, row.leaf_hash, path, signed.root)).toBe(true);
    }

    await f.appendMany(333, 700);
    f.clock.advance(10_000);
    const c1033 = (await f.tree.publish())!;
    const all = await recomputed();
    expect(c1033.root.equals(all.root(1033))).toBe(true);
    const consistency = await f.tree.consistencyProof(700, 1033);
    expect(consistency).toEqual(all.consistencyProof(700, 1033));
    expect(verifyConsistency(700, 1033, c700.root, c1033.root, consistency)).toBe(true);
    expect(await f.tree.root(1000)).toEqual(all.root(1000));

    // Another instance, cold cache, gets the same answers from the stored nodes.
    const other = createAuditTree(f.db, { signer: f.signer, clock: f.clock });
    expect(await other.inclusionProof(5, 1033)).toEqual(all.inclusionProof(5, 1033));
    expect(await other.consistencyProof(1, 1033)).toEqual(all.consistencyProof(1, 1033));
    expect((await verifyAuditLog(f.db, f.signer)).checkpoints).toBe(2);
  });

  it('gives a citizen a self-contained proof of an entry, checkable with the published key only', async () => {
    await f.appendMany(40);
    // No checkpoint covers the entry yet: one is published for it.
    const proof = (await f.tree.proveEntry(37))!;
    expect(proof).toMatchObject({ leaf_index: 37, tree_size: 40 });
    expect(await f.tree.proveEntry(40)).toBeUndefined();

    const b = (s: string) => Buffer.from(s, 'base64');
    const key = parseVerifierKey(proof.verifier_key);
    const checkpoint = openCheckpoint(proof.checkpoint, key);
    const leaf = createHash('sha256')
      .update(Buffer.from([0]))
      .update(b(proof.leaf))
      .digest();
    expect(leaf.equals(b(proof.leaf_hash))).toBe(true);
    expect(checkpoint.size).toBe(proof.tree_size);
    expect(checkpoint.root.equals(b(proof.root_hash))).toBe(true);
    expect(proof.checkpoint).toContain(proof.checkpoint_signature);
    expect(
      verifyInclusion(37, proof.tree_size, leaf, proof.audit_path.map(b), checkpoint.root),
    ).toBe(true);
    // The leaf bytes are the entry: its actor, action and subject can be read back from them.
    expect(b(proof.leaf).includes(Buffer.from('consent:c2'))).toBe(true);
  });

  it('several instances appending at once keep the indexes dense and in commit order', async () => {
    const others = [createAuditLog(f.db, f.clock), createAuditLog(f.db, f.clock)];
    const logs = [f.log, ...others];
    // Taking turns: each one's remembered next index is stale every time but the first.
    for (let i = 0; i < 9; i++) await logs[i % 3]!.append({ actor: 'a', action: `turn-${i}` });
    await Promise.all(
      Array.from({ length: 900 }, (_, i) =>
        logs[i % 3]!.append({ actor: `a${i % 3}`, action: `act-${i}` }),
      ),
    );
    expect((await recomputed()).size).toBe(909);
    const turns = await f.db
      .selectFrom('audit_log')
      .select(['leaf_index', 'action'])
      .where('leaf_index', '<', '9')
      .orderBy('leaf_index')
      .execute();
    expect(turns.map((r) => r.action)).toEqual(Array.from({ length: 9 }, (_, i) => `turn-${i}`));
    await f.tree.publish();
    expect(await verifyAuditLog(f.db, f.signer)).toMatchObject({ entries: 909, checkpoints: 1 });
  });

  it('replaces personal values with keyed pseudonyms: the table never holds them', async () => {
    await f.log.append({
      actor: 'citizen:c1',
      action: 'login.failed',
      subject: 'ip:203.0.113.7',
      details: {
        login: '+7 (999) 000-00-01',
        note: 'wrote to Ivanov@Example.test twice',
        snils: '112-233-445 95',
        from: '2001:db8::1',
        consent: '7a0b7c3e-5d1f-4a7e-9b1e-1234567890ab',
        client: 'partner-AbC123',
      },
    });
    const dump = JSON.stringify(await f.db.selectFrom('audit_log').selectAll().execute());
    for (const clear of [
      '203.0.113.7',
      '000-00-01',
      'xample.test',
      'vanov@',
      '445 95',
      '2001:db8',
    ]) {
      expect(dump).not.toContain(clear);
    }
    const row = (await f.log.byLeafIndex(0))!;
    expect(row.subject).toBe(`ip:${f.log.pseudonym('ip', '203.0.113.7')}`);
    expect(row.details).toMatchObject({
      login: f.log.pseudonym('number', '79990000001'),
      note: `wrote to ${f.log.pseudonym('email', 'ivanov@example.test')} twice`,
      consent: '7a0b7c3e-5d1f-4a7e-9b1e-1234567890ab',
      client: 'partner-AbC123',
    });
    expect(f.log.pseudonym('ip', '203.0.113.7')).toMatch(/^hmac:ip:[0-9a-f]{32}$/);
  });

  it.each([
    ['audit_tree_nodes', sql`update audit_tree_nodes set hash = hash`],
    ['audit_tree_nodes', sql`delete from audit_tree_nodes`],
    ['audit_checkpoints', sql`update audit_checkpoints set note = ''`],
    ['audit_checkpoints', sql`delete from audit_checkpoints`],
    ['audit_checkpoints', sql`truncate audit_checkpoints`],
  ])('%s is append-only too: %#', async (_table, statement) => {
    await f.appendMany(300);
    await f.tree.publish();
    await expect(statement.execute(f.db)).rejects.toThrow(/append-only/);
  });
});

describeEachEngine('audit log Merkle migration', (engine) => {
  it('numbers the entries written before it in seq order, and they verify', async () => {
    const database = await freshDatabase<AuditTables>(engine);
    try {
      await migrateToLatest(database, { '0001_audit': AUDIT_MIGRATIONS['0001_audit'] });
      for (let i = 0; i < 1203; i++) {
        await sql`insert into audit_log (at, actor, action, subject, details)
          values (${new Date(Date.UTC(2026, 0, 1, 0, 0, i))}, 'citizen:c1', ${`old-${i}`}, ${i % 2 ? null : 'consent:k'}, ${JSON.stringify({ i })}::jsonb)`.execute(
          database.db,
        );
      }
      await migrateToLatest(database, AUDIT_MIGRATIONS);
      const rows = await database.db
        .selectFrom('audit_log')
        .select(['seq', 'leaf_index', 'action'])
        .orderBy('seq')
        .execute();
      expect(rows.map((r) => [Number(r.leaf_index), r.action])).toEqual(
        rows.map((_r, i) => [i, `old-${i}`]),
      );
      // Still append-only after the backfill.
      await expect(sql`delete from audit_log`.execute(database.db)).rejects.toThrow(/append-only/);

      const clock = manualClock('2026-12-01T09:00:00Z');
      const signer = checkpointSigner(randomBytes(32));
      await createAuditLog(database.db, clock).append({ actor: 'a', action: 'new' });
      expect(
        (
          await database.db
            .selectFrom('audit_log')
            .select('leaf_index')
            .where('action', '=', 'new')
            .executeTakeFirst()
        )?.leaf_index,
      ).toBe('1203');
      await createAuditTree(database.db, { signer, clock }).publish();
      expect(await verifyAuditLog(database.db, signer)).toMatchObject({
        entries: 1204,
        checkpoints: 1,
      });
    } finally {
      await database.close();
    }
  });
});
