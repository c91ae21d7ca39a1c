import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Kysely } from 'kysely';
import { bankMigrations } from '../bank/migrations.js';
import { loadConfig, type Config } from '../config/config.js';
import { createAuditLog, type AuditTables } from '../platform/audit/audit-log.js';
import { listKeyVersions } from '../platform/crypto/index.js';
import { DatabaseError } from '../platform/db/index.js';
import { createLogger } from '../platform/http/logger.js';
import {
  countKekUses,
  retireUnusedKeks,
  rotateKek,
  type RewrapProgress,
} from '../platform/keys/kek-rotation.js';
import {
  kekFilePath,
  openServiceRuntime,
  type ServiceName,
  type ServiceRuntime,
} from '../platform/runtime/service-runtime.js';
import { portalMigrations } from '../portal/migrations.js';
import { createOidcStore, type OidcTables } from '../portal/oidc/oidc.store.js';
import {
  listSigningKeys,
  rotateSigningKey,
  SIGNING_KEY_TIMING,
  type SigningRotation,
} from '../portal/oidc/signing-keys.js';

/*
 * `soglasie keys rotate` and `soglasie keys status` (docs/keys.md). They work on the
 * service's database directly: the embedded database only while that service is stopped
 * (it belongs to one process), PostgreSQL also while the services run — they follow:
 * the portal re-reads its signing keys every 30 s, and both services re-read the KEK file
 * when they meet a version they lack (and within 5 s for new data).
 */

type Out = (line: string) => void;

/** Lines for the person at the terminal (the CLI's output, not a log). */
const print: Out = (line) => void process.stdout.write(`${line}\n`);

interface RotateOptions {
  service: ServiceName;
  signingKey?: boolean;
  kek?: boolean;
  retireOldKeks?: boolean;
  immediately?: boolean;
  batchSize: number;
}

const positiveInt = (value: string) => {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new InvalidArgumentError('a whole number, at least 1');
  }
  return Number(value);
};

export function keysCommand(): Command {
  const keys = new Command('keys').description(
    'Token signing keys and key-encryption keys (docs/keys.md).',
  );
  keys
    .command('rotate')
    .description(
      'Rotate the token signing key (portal) and the key-encryption key, re-wrapping every data key. With the embedded database the service must be stopped; with PostgreSQL it may run.',
    )
    .addOption(
      new Option('--service <name>', 'whose keys').choices(['portal', 'bank']).default('portal'),
    )
    .option('--signing-key', 'only the token signing key (portal)')
    .option('--kek', 'only the key-encryption key')
    .option(
      '--retire-old-keks',
      'then remove from the KEK file the old versions nothing uses any more (alone: only that)',
    )
    .option(
      '--immediately',
      `promote the next signing key now, even if published for less than ${SIGNING_KEY_TIMING.publishLeadMs / 60_000} minutes (a leaked key)`,
    )
    .option('--batch-size <n>', 'data keys re-wrapped per transaction', positiveInt, 500)
    .action(async (opts: RotateOptions) => {
      await keysRotate(loadConfig(process.env, { serving: false }), opts, print);
    });
  keys
    .command('status')
    .description('Show the signing keys and which KEK versions the stored data uses.')
    .addOption(
      new Option('--service <name>', 'whose keys').choices(['portal', 'bank']).default('portal'),
    )
    .action(async (opts: { service: ServiceName }) => {
      await keysStatus(loadConfig(process.env, { serving: false }), opts.service, print);
    });
  return keys;
}

async function openRuntime(config: Config, service: ServiceName) {
  const logger = createLogger({ name: 'keys', level: 'warn' });
  try {
    return await openServiceRuntime({
      service,
      config,
      migrations: service === 'portal' ? portalMigrations : bankMigrations,
      logger,
    });
  } catch (err) {
    if (err instanceof DatabaseError && err.code === 'ERR_DB_DATA_DIR') {
      throw Object.assign(
        new Error(
          `${err.message}\nkeys rotate needs the ${service} stopped while it uses the embedded database (or PostgreSQL, where it may run).`,
        ),
        { code: 'ERR_SERVICE_RUNNING' },
      );
    }
    throw err;
  }
}

/** The work of `soglasie keys rotate`; `out` prints a line. */
export async function keysRotate(
  config: Config,
  opts: RotateOptions,
  out: Out,
  hooks: { afterBatch?: () => Promise<void>; settleMs?: number } = {},
): Promise<void> {
  // `--retire-old-keks` alone only retires; with another flag it comes after a rotation.
  const retireOnly =
    opts.retireOldKeks === true && !opts.signingKey && !opts.kek && !opts.immediately;
  const doSigning = !retireOnly && opts.service === 'portal' && (opts.signingKey || !opts.kek);
  const doKek = !retireOnly && (opts.kek || !opts.signingKey);
  if (opts.service === 'bank' && opts.signingKey) {
    throw Object.assign(new Error('the bank has no token signing key; use --kek'), {
      code: 'ERR_USAGE',
    });
  }
  const runtime = await openRuntime(config, opts.service);
  try {
    const audit =
      opts.service === 'portal'
        ? createAuditLog(runtime.db as unknown as Kysely<AuditTables>, runtime.clock)
        : undefined;
    const servicesMayRun = runtime.database.kind === 'postgres';
    // Signing first: its new key is sealed, and the KEK rotation then re-wraps it too.
    if (doSigning) await rotateSigning(runtime, opts, audit, out);
    const kekPath = kekFilePath(config.dataDir, opts.service);
    if (doKek) {
      out(`Key-encryption key (${opts.service}): ${kekPath}`);
      const progress = createProgress(out);
      const result = await rotateKek({
        kekPath,
        db: runtime.db,
        servicesMayRun,
        retireOld: opts.retireOldKeks,
        batchSize: opts.batchSize,
        onProgress: progress.update,
        afterBatch: hooks.afterBatch,
        settleMs: hooks.settleMs,
      }).finally(() => progress.stop());
      const rewrapped = result.passes.reduce((n, p) => n + p.rewrapped, 0);
      const failures = result.passes.flatMap((p) => p.failures);
      out(
        `  version ${result.version} is current; ${rewrapped} data key(s) re-wrapped` +
          (result.passes.length > 1 ? ` in ${result.passes.length} passes` : '') +
          '.',
      );
      for (const f of failures.slice(0, 20)) {
        out(`  could not re-wrap ${f.table}.${f.column} (${f.row}): ${f.reason}`);
      }
      await audit?.append({
        actor: 'cli',
        action: 'keys.kek_rotated',
        details: { version: result.version, rewrapped, failures: failures.length },
      });
      reportRetirement(out, result.retired, result.kept, result.inUse, opts.retireOldKeks);
      if (result.retired.length > 0) {
        await audit?.append({
          actor: 'cli',
          action: 'keys.kek_retired',
          details: { versions: result.retired },
        });
      }
    }
    if (retireOnly) {
      out(`Key-encryption key (${opts.service}): ${kekPath}`);
      const result = await retireUnusedKeks(kekPath, runtime.db);
      reportRetirement(out, result.retired, result.kept, result.inUse, true);
      if (result.retired.length > 0) {
        await audit?.append({
          actor: 'cli',
          action: 'keys.kek_retired',
          details: { versions: result.retired },
        });
      }
    }
  } finally {
    await runtime.close();
  }
}

async function rotateSigning(
  runtime: ServiceRuntime<unknown>,
  opts: RotateOptions,
  audit: ReturnType<typeof createAuditLog> | undefined,
  out: Out,
): Promise<void> {
  const result: SigningRotation = await rotateSigningKey({
    store: createOidcStore(runtime.db as unknown as Kysely<OidcTables>),
    sealer: runtime.sealer,
    clock: runtime.clock,
    immediately: opts.immediately,
    onEvent: (event) =>
      audit?.append({
        actor: 'cli',
        action: event.type,
        subject: event.type === 'signing_key.created' ? event.kid : event.to,
        details:
          event.type === 'signing_key.created'
            ? { state: event.state }
            : {
                from: event.from,
                next: event.next,
                publish_until: event.publishUntil.toISOString(),
              },
      }),
  });
  const refreshS = SIGNING_KEY_TIMING.refreshMs / 1000;
  const leadMin = SIGNING_KEY_TIMING.publishLeadMs / 60_000;
  out('Token signing key (portal):');
  if (result.promoted) {
    out(`  ${result.currentKid} signs from now on (running portals switch within ${refreshS} s).`);
    out(
      `  ${result.retiredKid} is retired: still in the JWKS, and its tokens still valid, until ${result.publishUntil.toISOString()}.`,
    );
    out(
      `  ${result.nextKid} is the new next key: in the JWKS once a portal has read it; it can sign ${leadMin} min after that.`,
    );
    if (result.early) {
      out(
        `  Promoted early (--immediately): relying parties that cached the JWKS before ${result.currentKid} was published must fetch it again.`,
      );
    }
  } else {
    await audit?.append({
      actor: 'cli',
      action: 'signing_key.rotation_requested',
      subject: result.nextKid,
    });
    out(`  rotation requested: ${result.nextKid} (next) will replace ${result.currentKid}.`);
    out(
      result.promoteAt
        ? `  It becomes current at ${result.promoteAt.toISOString()}, ${leadMin} min after it was first published: a running portal promotes it then (or run this again after that time, or use --immediately).`
        : `  No running portal has published it yet: it becomes current ${leadMin} min after a portal first does (or use --immediately).`,
    );
  }
}

function reportRetirement(
  out: Out,
  retired: number[],
  kept: number[],
  inUse: Map<number, number>,
  asked: boolean | undefined,
) {
  const uses = [...inUse].map(([v, n]) => `v${v}: ${n}`).join(', ') || 'none';
  out(`  data keys by KEK version: ${uses}.`);
  if (retired.length > 0) out(`  retired (removed from the KEK file): v${retired.join(', v')}.`);
  if (kept.length > 0) {
    out(
      `  kept: v${kept.join(', v')}, still used by stored data; retire with --retire-old-keks once nothing does.`,
    );
  } else if (!asked) {
    out('  old versions stay in the KEK file until retired with --retire-old-keks.');
  }
}

/**
 * A progress bar on a terminal; otherwise a plain line at every tenth and at the end,
 * so that logs of a scripted run stay readable.
 */
function createProgress(out: Out) {
  const tty = process.stdout.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  let pass = 0;
  let lastTenth = -1;
  return {
    update(p: RewrapProgress & { pass: 1 | 2 }) {
      if (p.pass !== pass) {
        bar?.stop();
        bar = undefined;
        pass = p.pass;
        lastTenth = -1;
        if (p.pass === 2) out('  second pass, for data written by running services meanwhile:');
      }
      const payload = { rewrapped: p.rewrapped, table: p.table || '…' };
      if (tty) {
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              format:
                '  re-wrapping [{bar}] {percentage}% | {value}/{total} rows | {rewrapped} re-wrapped | {table}',
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(p.total, 1), p.done, payload);
        }
        bar.setTotal(Math.max(p.total, p.done, 1));
        bar.update(p.done, payload);
        return;
      }
      const tenth = p.total === 0 ? 10 : Math.floor((10 * p.done) / p.total);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        out(
          `  re-wrap pass ${p.pass}: ${p.done}/${p.total} rows (${p.total === 0 ? 100 : Math.floor((100 * p.done) / p.total)}%), ${p.rewrapped} re-wrapped${p.table ? `, at ${p.table}` : ''}`,
        );
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

/** The work of `soglasie keys status`. */
export async function keysStatus(config: Config, service: ServiceName, out: Out): Promise<void> {
  const runtime = await openRuntime(config, service);
  try {
    if (service === 'portal') {
      out('Token signing keys (portal):');
      const iso = (d: Date | null) => (d ? d.toISOString() : '—');
      for (const k of await listSigningKeys(
        createOidcStore(runtime.db as unknown as Kysely<OidcTables>),
      )) {
        const extra =
          k.state === 'retired'
            ? `retired ${iso(k.retiredAt)}, in the JWKS until ${iso(k.publishUntil)}`
            : k.state === 'next'
              ? `published ${iso(k.publishedAt)}` +
                (k.promoteRequestedAt ? `, rotation requested ${iso(k.promoteRequestedAt)}` : '')
              : `signing since ${iso(k.promotedAt ?? k.createdAt)}`;
        out(`  ${k.state.padEnd(8)} ${k.kid}  ${extra}`);
      }
    }
    const kekPath = kekFilePath(config.dataDir, service);
    out(`Key-encryption keys (${service}): ${kekPath}`);
    const { byVersion } = await countKekUses(runtime.db);
    const versions = await listKeyVersions(kekPath);
    for (const v of versions) {
      out(
        `  v${v.version}${v.current ? ' (current)' : ''}  created ${v.createdAt}  wraps ${byVersion.get(v.version) ?? 0} data key(s)`,
      );
    }
    const missing = [...byVersion.keys()].filter((n) => !versions.some((v) => v.version === n));
    if (missing.length > 0) {
      out(`  in use but not in the KEK file (that data cannot be opened): v${missing.join(', v')}`);
    }
  } finally {
    await runtime.close();
  }
}
