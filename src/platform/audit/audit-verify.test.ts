import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { auditFixture } from '../../../test/support/audit.js';
import { describeEachEngine } from '../../../test/support/databases.js';
import { leafFields } from './audit-log.js';
import { AuditLogTamperedError, verifyAuditLog } from './audit-verify.js';
import { AUDIT_LOG_ORIGIN, checkpointSigner, signCheckpoint } from './checkpoint.js';
import { encodeLeaf } from './leaf.js';
import { leafHash } from './merkle.js';

describeEachEngine('audit verify', (engine) => {
  let f: Awaited<ReturnType<typeof auditFixture>>;
  beforeEach(async () => {
    f = await auditFixture(engine);
    // Three checkpoints, at 300, 600 and 900 entries, and 50 entries after the last one.
    for (const size of [300, 600, 900]) {
      await f.appendMany(300, size - 300);
      f.clock.advance(10_000);
      await f.tree.publish();
    }
    await f.appendMany(50, 900);
  });
  afterEach(async () => {
    await f.database.close();
  });

  async function failure(): Promise<AuditLogTamperedError> {
    const err = await verifyAuditLog(f.db, f.signer, { page: 128 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuditLogTamperedError);
    return err as AuditLogTamperedError;
  }

  it('passes a clean log and counts what it checked', async () => {
    const progress: number[] = [];
    const result = await verifyAuditLog(f.db, f.signer, {
      page: 100,
      onProgress: (done) => progress.push(done),
    });
    expect(result).toMatchObject({ entries: 950, checkpoints: 3, checkpointedSize: 900 });
    // Nodes of 256+ leaves within 900: 3 tiles, 1 node of 512.
    expect(result.nodes).toBe(4);
    expect(progress.at(-1)).toBe(950);
  });

  it('passes an empty log', async () => {
    const empty = await auditFixture(engine);
    try {
      expect(await verifyAuditLog(empty.db, empty.signer)).toMatchObject({
        entries: 0,
        checkpoints: 0,
      });
    } finally {
      await empty.database.close();
    }
  });

  it('names the entry whose content was edited', async () => {
    await f.tamper(
      sql`update audit_log set details = '{"resource":"docs","n":123,"fields":[]}' where leaf_index = 123`,
    );
    const err = await failure();
    expect(err.index).toBe(123);
    expect(err.message).toMatch(
      /^audit log verification failed at index 123: entry 123 was changed/,
    );
  });

  it('names an entry edited after the last checkpoint too (by its stored hash)', async () => {
    await f.tamper(sql`update audit_log set actor = 'partner:someone-else' where leaf_index = 940`);
    expect((await failure()).index).toBe(940);
  });

  it('names a deleted entry', async () => {
    await f.tamper(sql`delete from audit_log where leaf_index = 77`);
    const err = await failure();
    expect(err.index).toBe(77);
    expect(err.message).toContain('entry 77 is missing');
  });

  it('names the first missing entry when the tail a checkpoint covers was cut off', async () => {
    await f.tamper(sql`delete from audit_log where leaf_index >= 850`);
    const err = await failure();
    expect(err.index).toBe(850);
    expect(err.message).toContain('checkpoint at tree size 900');
  });

  it('catches an entry rewritten together with its stored hash, after the last good checkpoint', async () => {
    const row = (await f.log.byLeafIndex(450))!;
    const forged = leafHash(encodeLeaf(leafFields({ ...row, actor: 'partner:innocent' }, 450)));
    await f.tamper(
      sql`update audit_log set actor = 'partner:innocent', leaf_hash = ${forged} where leaf_index = 450`,
    );
    const err = await failure();
    // The checkpoint at 300 still holds; the one at 600 does not: the change is in 300…599.
    expect(err.index).toBe(300);
    expect(err.message).toContain('checkpoint at tree size 600 does not match the entries');
    expect(err.message).toContain('300…599');
  });

  it('refuses a checkpoint that was not signed by the log key', async () => {
    const other = checkpointSigner(randomBytes(32));
    const root = (await f.tree.root(600)).toString('hex');
    const note = signCheckpoint(
      {
        origin: AUDIT_LOG_ORIGIN,
        size: 600,
        root: Buffer.from(root, 'hex'),
        time: new Date('2026-12-01T09:00:20Z'),
      },
      other,
    );
    await f.tamper(sql`update audit_checkpoints set note = ${note} where tree_size = 600`);
    const err = await failure();
    expect(err.index).toBe(300);
    expect(err.message).toMatch(/checkpoint at tree size 600 is not validly signed/);
  });

  it('refuses a checkpoint row that disagrees with its signed note', async () => {
    await f.tamper(
      sql`update audit_checkpoints set root_hash = ${Buffer.alloc(32)} where tree_size = 300`,
    );
    expect((await failure()).message).toMatch(
      /at index 0: the checkpoint at tree size 300 does not match its signed note/,
    );
  });

  it('refuses a stored node that proofs would use', async () => {
    await f.tamper(
      sql`update audit_tree_nodes set hash = ${Buffer.alloc(32)} where level = 8 and idx = 2`,
    );
    const err = await failure();
    expect(err.index).toBe(512);
    expect(err.message).toContain('stored tree node 8/2 (entries 512…767)');
  });
});
