import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfig, type Config, type Mode } from './config/config.js';
import { bankMigrations } from './bank/migrations.js';
import { createLogger } from './platform/http/logger.js';
import { migrationStatus } from './platform/db/index.js';
import { openServiceRuntime, type ServiceName } from './platform/runtime/service-runtime.js';
import { portalMigrations } from './portal/migrations.js';
import { registerDemoBank, startService, type RunningService } from './services.js';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { partnerAdd, type PartnerAddOptions } from './partner-kit/partner-add.js';
import { initPki } from './platform/pki/index.js';
import { readAdminToken } from './platform/runtime/admin-token.js';
import { keysCommand } from './commands/keys.js';
import { addRevokeCertCommand } from './commands/partner-revoke-cert.js';
import { auditVerifyCommand } from './portal/audit/verify-command.js';

const program = new Command()
  .name('soglasie')
  .description('Soglasie: a state services portal and a bank sharing data by consent.')
  .showHelpAfterError();

function config(mode?: Mode, serving = true): Config {
  return loadConfig(process.env, { mode, serving });
}

/** Runs services until Ctrl-C or SIGTERM, then closes them cleanly. */
async function runUntilSignal(services: RunningService[]): Promise<void> {
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: stopping…`);
      for (const s of services.reverse()) await s.close();
      console.log('Stopped.');
      resolve();
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
  });
}

program
  .command('demo')
  .description(
    'Run the portal and the bank together with demo personas (the default of npm start).',
  )
  .action(async () => {
    const cfg = config('demo');
    if (!cfg.demo) throw new Error('The demo command needs demo mode; unset SOGLASIE_MODE.');
    const started = Date.now();
    const portal = await startService('portal', cfg, { seed: true });
    let bank: RunningService;
    try {
      await registerDemoBank(cfg, portal);
      bank = await startService('bank', cfg, { seed: true });
    } catch (err) {
      await portal.close();
      throw err;
    }
    const password = 'Demo-Passw0rd!';
    console.log(`
Soglasie demo is running (${((Date.now() - started) / 1000).toFixed(1)} s). Data: ${cfg.dataDir}

  Portal (Госуслуги, sandbox)  ${portal.url}   partner API (mTLS): ${portal.mtlsUrl}
    citizen   +79990000001  (Иванов Иван Иванович; or ivanov@example.test)
    citizen   +79990000002  (Петрова Анна Сергеевна; e-mail not confirmed)
    security  security      (security center)
    admin     admin         (partners, reports)

  Bank                         ${bank.url}
    customer  ivanov, petrova
    operator  operator

  Password for everyone: ${password}
  One-time codes: ${portal.url}/dev/outbox and ${bank.url}/dev/outbox

Press Ctrl-C to stop.`);
    await runUntilSignal([portal, bank]);
  });

for (const name of ['portal', 'bank'] as const) {
  program
    .command(name)
    .description(`Run the ${name} alone.`)
    .option('--demo', 'demo mode: dev outbox, demo personas, plain HTTP on loopback')
    .action(async (opts: { demo?: boolean }) => {
      const cfg = config(opts.demo ? 'demo' : undefined);
      const service = await startService(name, cfg, { seed: cfg.demo });
      console.log(`${name} listening on ${service.url}`);
      await runUntilSignal([service]);
    });
}

program
  .command('migrate')
  .description('Apply pending database migrations (they also run at start).')
  .addOption(
    new Option('--service <name>', 'which database')
      .choices(['portal', 'bank', 'all'])
      .default('all'),
  )
  .option('--status', 'only list applied and pending migrations')
  .action(async (opts: { service: 'portal' | 'bank' | 'all'; status?: boolean }) => {
    const cfg = config(undefined, false);
    const services: ServiceName[] = opts.service === 'all' ? ['portal', 'bank'] : [opts.service];
    const logger = createLogger({ name: 'migrate', level: 'warn' });
    for (const service of services) {
      const migrations = service === 'portal' ? portalMigrations : bankMigrations;
      const runtime = await openServiceRuntime({ service, config: cfg, migrations, logger });
      try {
        const status = await migrationStatus(runtime.database, migrations);
        console.log(
          `${service}: ${status.applied.length} applied, ${status.pending.length} pending` +
            (opts.status ? `\n  applied: ${status.applied.join(', ') || '—'}` : ''),
        );
      } finally {
        await runtime.close();
      }
    }
  });

program
  .command('pki')
  .description('The portal CA for partner certificates and its mTLS listener certificate.')
  .command('init')
  .description(
    'Create the CA and the listener certificate in <data dir>/portal-pki (never overwrites).',
  )
  .action(async () => {
    const cfg = config(undefined, false);
    const dir = path.join(cfg.dataDir, 'portal-pki');
    const result = await initPki(dir);
    console.log(
      result.created
        ? `Created in ${dir}:\n  ${result.files.join('\n  ')}`
        : `${dir} is complete; nothing changed.`,
    );
  });

program
  .command('partner')
  .description('Partners of the portal.')
  .command('add')
  .description('Register a partner client on the running portal and write what it needs into DIR.')
  .requiredOption('--name <name>', 'the partner as citizens will see it, e.g. "Банк"')
  .requiredOption('--redirect-uri <url...>', 'exact redirect URI(s) of the partner')
  .requiredOption('--out <dir>', 'where to write client.json, keys and certificates')
  .addOption(
    new Option(
      '--sender-constraint <kind>',
      'bind access tokens to the client certificate or a DPoP key',
    )
      .choices(['mtls', 'dpop'])
      .default('mtls'),
  )
  .option(
    '--portal-connect <file>',
    'accept connections citizens start on the portal (J1): a JSON file {"client_ref_label", "request"} where request is the soglasie_consent authorization details entry',
  )
  .option(
    '--rate-limit <n>',
    "the partner's own partner API rate limit, requests per window (default: the portal's PARTNER_RATE_LIMIT)",
    (value: string) => {
      if (!/^\d+$/.test(value) || Number(value) < 1) {
        throw new InvalidArgumentError('a whole number of requests, at least 1');
      }
      return Number(value);
    },
  )
  .action(
    async (opts: {
      name: string;
      redirectUri: string[];
      out: string;
      senderConstraint: 'mtls' | 'dpop';
      portalConnect?: string;
      rateLimit?: number;
    }) => {
      const cfg = config(undefined, false);
      let portalConnect: PartnerAddOptions['portalConnect'];
      if (opts.portalConnect) {
        try {
          portalConnect = JSON.parse(
            readFileSync(path.resolve(opts.portalConnect), 'utf8'),
          ) as never;
        } catch (err) {
          throw Object.assign(
            new Error(
              `cannot read --portal-connect ${opts.portalConnect}: ${(err as Error).message}`,
            ),
            { code: 'ERR_PORTAL_CONNECT_FILE' },
          );
        }
      }
      const { clientId, files } = await partnerAdd({
        portalAdminUrl: `http://127.0.0.1:${cfg.portal.httpPort}`,
        adminToken: readAdminToken(cfg.dataDir, 'portal'),
        name: opts.name,
        redirectUris: opts.redirectUri,
        out: path.resolve(opts.out),
        senderConstraint: opts.senderConstraint,
        portalConnect,
        rateLimit: opts.rateLimit,
      });
      console.log(`Registered ${clientId}. Files:\n  ${Object.values(files).join('\n  ')}`);
    },
  );

program
  .command('seed')
  .description(
    'Create the demo personas that are missing (demo mode; the services must be stopped when using the embedded database).',
  )
  .action(async () => {
    const cfg = config('demo');
    for (const name of ['portal', 'bank'] as const) {
      const service = await startService(
        name,
        { ...cfg, [name]: { ...cfg[name], httpPort: 0 } } as Config,
        {
          seed: true,
        },
      );
      console.log(
        `${name}: ${service.seeded.length ? `created ${service.seeded.join(', ')}` : 'all personas exist'}`,
      );
      await service.close();
    }
  });

program
  .command('audit')
  .description("The portal's tamper-evident audit log (docs/audit-log.md).")
  .command('verify')
  .description(
    'Recompute the Merkle tree from the entries and check every signed checkpoint; exit 1 naming the first bad index (the portal must be stopped when using the embedded database).',
  )
  .action(async () => {
    console.log(await auditVerifyCommand(config(undefined, false)));
  });

program.addCommand(keysCommand());
addRevokeCertCommand(program.commands.find((c) => c.name() === 'partner')!);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Expected failures get one clear line; only the unexpected show a stack.
  const known = err as { code?: string; message?: string };
  if (err instanceof ConfigError || (known.code && known.code.startsWith('ERR_'))) {
    console.error(`soglasie: ${known.message}`);
  } else if (known.code === 'EADDRINUSE') {
    console.error(
      `soglasie: ${known.message}. Another program uses that port; set PORTAL_HTTP_PORT or BANK_HTTP_PORT.`,
    );
  } else {
    console.error('soglasie: unexpected error:', err);
  }
  process.exitCode = 1;
});
