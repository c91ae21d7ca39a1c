/*
 * npm run bench: the data API read and the token endpoint against a bare Fastify
 * hello-world on the same mTLS listener settings, in one run, on 127.0.0.1 only.
 *
 * This process runs the demo (portal + bank, in demo mode on a temporary data
 * directory) and the baseline; each load runs in a child process (bench/load.ts) so the
 * load generator never shares the server's event loop. Speed is reported as a ratio to
 * the baseline measured in the same run, so the figures travel between machines.
 * Bounded in time; always cleans up. Exits 0 whatever the figures are (a benchmark
 * reports, it does not gate); 1 only when it could not measure at all.
 *
 * The services use the demo's embedded PGlite; with BENCH_DATABASE_URL (a PostgreSQL
 * admin URL, e.g. postgres://postgres@127.0.0.1:5432/postgres) they get two new databases
 * on that server instead, dropped at the end.
 *
 * Then the rate-limit phase (bench/rate-limit.ts): a partner offering 150 requests/s at
 * the default limit gets 100 ± 5 admitted per second, and partners at 95/s none refused,
 * beside the flood or alone.
 *
 * Last, the revocation phase (bench/revocation.ts): how soon a citizen's revocation stops
 * the bank's reads, reaches the bank as a webhook and comes back as its signed deletion
 * receipt, over many revocations of consents the demo bank obtained through its own flow.
 *
 * After the services have stopped, the audit log phases (bench/audit.ts), on a database of
 * their own: appends with group commit against the pre-Merkle log, and `audit verify` over
 * a million entries (at most 90 s more).
 *
 * `npm run bench -- --breakdown` measures instead a ladder of partner-listener requests
 * that each stop further down the data API's pipeline, to see where its time goes.
 */
import os from 'node:os';
import { Agent, request } from 'undici';
import { assertionSigner, refreshGrantBody } from './assertion.js';
import { auditTable, runAuditBench } from './audit.js';
import { startBaseline } from './baseline.js';
import { killLoadGenerators, runLoad, type Measured } from './load-runner.js';
import type { LoadSpec } from './load.js';
import { table, type Row, type Verdict } from './report.js';
import {
  emptyRevocationResult,
  measureRevocations,
  revocationNotes,
  revocationRows,
} from './revocation.js';
import { startBenchServices, type BenchServices } from './services.js';
import {
  measureRateLimit,
  RATE_LIMIT_PHASE_S,
  rateLimitNotes,
  rateLimitRows,
  type RateLimitResult,
} from './rate-limit.js';
import { dataApiTokenVerifier } from './verify.js';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 8);
/** The reference-only rows (second baseline, hello-world + ES256) run shorter. */
const SHORT_S = Math.max(2, Math.round(DURATION_S / 2));
const WARMUP_S = 1;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
/** The whole run, start-up and clean-up included, stays under 2 minutes. */
const BUDGET_MS = 115_000;
/** The revocation phase: at most this many revocations, in at most this long. */
const REVOCATIONS = Number(process.env.BENCH_REVOCATIONS ?? 60);
const REVOCATION_MAX_S = 35;
const TARGETS = { dataApiRatio: 0.35, halfLoadP99Ms: 5, tokenRatio: 0.04 };
const BREAKDOWN = process.argv.includes('--breakdown');

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
const progress = (text: string) => console.error(`[bench ${elapsed()}] ${text}`);

let services: BenchServices | undefined;
let baseline: Awaited<ReturnType<typeof startBaseline>> | undefined;
let cleaned: Promise<void> | undefined;
const notes: string[] = [];
/** Measured rows, in the order they ran. */
const measured = new Map<string, Measured>();
let rotates: boolean | undefined;
const revocation = emptyRevocationResult();
let revocationRan = false;
let rateLimit: RateLimitResult | undefined;

function cleanup(): Promise<void> {
  cleaned ??= (async () => {
    killLoadGenerators();
    await baseline?.close().catch(() => {});
    await services?.close().catch(() => {});
  })();
  return cleaned;
}

/** A phase runs only if it can finish inside the budget. */
function fits(seconds: number): boolean {
  const ok = Date.now() - t0 + (seconds + 8) * 1000 < BUDGET_MS;
  if (!ok) notes.push(`Skipped a ${seconds} s phase: it would not finish inside the time budget.`);
  return ok;
}

const stopNow = (why: string, code: number) => {
  console.error(`bench: ${why}; stopping.`);
  killLoadGenerators();
  void Promise.race([cleanup(), new Promise((r) => setTimeout(r, 5000))]).then(() =>
    process.exit(code),
  );
};
const watchdog = setTimeout(() => {
  print();
  stopNow(`over the ${BUDGET_MS / 1000} s budget`, 1);
}, BUDGET_MS);
watchdog.unref();
process.once('SIGINT', () => stopNow('interrupted', 130));

function verdictOf(m: Measured | undefined, pass: boolean): Verdict {
  if (!m) return 'not run';
  if (m.ok === 0 || m.unexpected > 0 || m.errors > 0) return 'INVALID';
  return pass ? 'PASS' : 'FAIL';
}

const NAMES = {
  baseA: 'baseline: Fastify hello-world, same mTLS',
  data: 'data API GET /rs/prns/{sub}, max',
  checks: 'security checks alone (another oid → 404)',
  half: 'data API at half load',
  token: 'token endpoint, refresh_token grant',
  verified: 'hello-world + ES256 token check (no DB)',
  baseB: 'baseline again (end of run)',
};

/**
 * Issue 5's "cost of the security checks on a data API read, as a ratio": a read of
 * another person's oid passes every check a read does (rate limit, revoked-certificate
 * hook, token and its binding, partner, consent FOR SHARE, subject; the anomaly rules see
 * the refusal) and stops there, with no data fetched or audited.
 */
function checksLine(checks: Measured | undefined, data: Measured | undefined): string {
  if (!checks?.cpuPerRequestUs || !data?.cpuPerRequestUs) return '';
  const share = checks.cpuPerRequestUs / data.cpuPerRequestUs;
  return `Security checks: ${NAMES.checks} runs every check of a data read (rate limit, revoked-certificate hook, ES256 token and its certificate binding, partner, consent FOR SHARE, subject; the anomaly rules see the refusal) and stops before the data: ${checks.cpuPerRequestUs.toFixed(0)} µs of server time per request against ${data.cpuPerRequestUs.toFixed(0)} µs for a full read, i.e. the checks are ${share.toFixed(2)}× of a read's cost (the rest: citizen record, decryption, audit leaf).`;
}

function print(): void {
  const baseA = measured.get(NAMES.baseA);
  const baseB = measured.get(NAMES.baseB);
  const base = Math.max(baseA?.rps ?? 0, baseB?.rps ?? 0) || NaN;
  const ratio = (m: Measured | undefined) => (m ? m.rps / base : undefined);
  const row = (name: string, target: string, pass?: (m: Measured) => boolean): Row => {
    const m = measured.get(name);
    return {
      name,
      m,
      ratio: ratio(m),
      target,
      verdict: !m ? 'not run' : pass ? verdictOf(m, pass(m)) : 'info',
    };
  };
  const half = measured.get(NAMES.half);
  const rows: Row[] = BREAKDOWN
    ? [...measured.keys()].map((name) => {
        const r = row(name, name === NAMES.baseA ? 'reference' : '');
        return verdictOf(r.m, true) === 'INVALID' ? { ...r, verdict: 'INVALID' } : r;
      })
    : [
        row(NAMES.baseA, 'reference'),
        row(NAMES.data, `≥ ${TARGETS.dataApiRatio}×`, (m) => ratio(m)! >= TARGETS.dataApiRatio),
        {
          ...row(
            NAMES.half,
            `p99 ≤ ${TARGETS.halfLoadP99Ms} ms`,
            (m) => m.p99 <= TARGETS.halfLoadP99Ms && m.rps >= 0.95 * m.targetRate!,
          ),
          name: `${NAMES.half} (${half?.targetRate?.toFixed(0) ?? '?'} req/s paced)`,
        },
        {
          ...row(NAMES.token, `≥ ${TARGETS.tokenRatio}×`, (m) => ratio(m)! >= TARGETS.tokenRatio),
          name: `${NAMES.token}${rotates ? ' (chained, 1 conn)' : ''}`,
        },
        row(NAMES.checks, 'info'),
        row(NAMES.verified, 'reference'),
        row(NAMES.baseB, 'reference'),
      ];
  console.log('');
  console.log(table(rows));
  console.log('');
  const lines = BREAKDOWN
    ? [
        `× base: req/s over the baseline's (${base.toFixed(0)} req/s). Each step is a request on the partner listener that stops further down the data read, and every response had the status named. srv µs/req is what the serving process spent per request (CPU, all threads): the difference between two steps is roughly the cost of what the later one adds (error and success responses are not quite the same path).`,
        `autocannon, ${CONNECTIONS} keep-alive mTLS connections, 1 request in flight each, ${WARMUP_S} s warm-up + ${DURATION_S} s measured.`,
      ]
    : [
        `× base: req/s over the better of the two baseline runs (${base.toFixed(0)} req/s).`,
        `Max rows: autocannon, ${CONNECTIONS} keep-alive mTLS connections, 1 request in flight each, ${WARMUP_S} s warm-up + ${DURATION_S} s measured (${SHORT_S} s for the last two rows); latency exact (from each response), not histogram-rounded.`,
        `Half load: open loop at half the data API's measured max, steady pacing (undici Pool, ${CONNECTIONS} connections), latency counted from when each request was due. (autocannon's overallRate is not used: it sends each second's budget back to back, then idles.)`,
        'Token endpoint: POST /token, grant_type=refresh_token, private_key_jwt with a new client assertion (unique jti) per request, signed in the load generator.',
        rotates === undefined
          ? ''
          : rotates
            ? '  The portal ROTATED the refresh token on the probe, so each request must carry the newest one: measured as one chained sequence (1 connection), not at full concurrency.'
            : "  A probe got the same refresh token back: oidc-provider 9's default rotateRefreshToken rotates only public clients' unbound tokens, or tokens past 70% of their TTL (90 days here); this partner is confidential and its token certificate-bound (FAPI 2.0 advises against rotation anyway). So the one refresh token is used concurrently on all connections.",
        "hello-world + ES256: the baseline server, but each request first passes the data API's createTokenVerifier (no database): the ceiling that verifying every request puts on the data API.",
        checksLine(measured.get(NAMES.checks), measured.get(NAMES.data)),
      ];
  console.log(
    [
      ...lines,
      'srv ELU: event-loop utilization of the serving process in the window (≈1 = saturated; well below 1 = the load generator or the machine was the limit).',
      `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )} at the end. The load generator shares this machine's cores with the server (and with anything else running), so expect noise between runs.`,
      ...notes,
    ]
      .filter(Boolean)
      .join('\n'),
  );
  if (BREAKDOWN) return;
  if (rateLimit) {
    console.log('');
    console.log(table(rateLimitRows(rateLimit)));
    console.log('');
    console.log(rateLimitNotes(rateLimit).join('\n'));
  }
  console.log('');
  console.log(table(revocationRows(revocation)));
  console.log('');
  console.log(
    revocationRan
      ? revocationNotes(revocation).join('\n')
      : 'Revocation: not run (see the notes above).',
  );
}

/** One refresh: whether the portal hands back a new refresh token (rotation). */
async function probeRotation(s: BenchServices, tokenUrl: string): Promise<boolean> {
  const agent = new Agent({
    connect: {
      ca: s.partner.ca,
      cert: s.partner.cert,
      key: s.partner.key,
      servername: 'localhost',
    },
  });
  try {
    const sign = assertionSigner({
      jwk: s.partner.signingJwk,
      clientId: s.partner.clientId,
      audience: s.partner.issuer,
    });
    const res = await request(tokenUrl, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: refreshGrantBody(s.refreshToken, sign()),
    });
    const body = (await res.body.json()) as { refresh_token?: string; error?: string };
    if (res.statusCode !== 200) throw new Error(`refresh probe: ${res.statusCode} ${body.error}`);
    if (body.refresh_token && body.refresh_token !== s.refreshToken) {
      s.refreshToken = body.refresh_token;
      return true;
    }
    return false;
  } finally {
    await agent.close();
  }
}

type Spec = Omit<LoadSpec, 'kind' | 'tls' | 'connections' | 'durationS' | 'warmupS'>;

async function main() {
  progress('starting the demo in-process (portal + bank, temporary data directory)…');
  const loadAtStart = os.loadavg();
  services = await startBenchServices({ postgresAdminUrl: process.env.BENCH_DATABASE_URL });
  const s = services;
  const verify = await dataApiTokenVerifier({
    portalUrl: `http://127.0.0.1:${s.portal.port}`,
    issuer: s.config.portal.publicUrl,
    mtlsUrl: s.config.portal.mtlsUrl,
    accessToken: s.accessToken,
  });
  baseline = await startBaseline(s.pki, verify);
  notes.push(
    `Database: ${s.database}. Load average at the start: ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}. Set-up took ${elapsed()}.`,
  );

  const tls = { ca: s.partner.ca, cert: s.partner.cert, key: s.partner.key };
  /** Measures one row at max load, if it fits in the budget. */
  const max = async (name: string, spec: Spec, durationS = DURATION_S) => {
    if (!fits(durationS + WARMUP_S + 1)) return undefined;
    progress(`${name}…`);
    const m = await runLoad({
      kind: 'max',
      tls,
      connections: CONNECTIONS,
      durationS,
      warmupS: WARMUP_S,
      ...spec,
    });
    measured.set(name, m);
    return m;
  };

  const origin = `https://127.0.0.1:${new URL(s.mtlsOrigin).port}`;
  const dataUrl = `${origin}/rs/prns/${s.sub}`;
  const bearer = { authorization: `Bearer ${s.accessToken}`, accept: 'application/json' };
  const baselineSpec: Spec = { url: `${baseline.origin}/`, method: 'GET', headers: {} };
  const verifiedSpec: Spec = { url: `${baseline.origin}/verified`, method: 'GET', headers: bearer };

  await max(NAMES.baseA, baselineSpec);

  if (BREAKDOWN) {
    await max(NAMES.verified, verifiedSpec);
    const steps: [string, Spec][] = [
      ['no token → 401 (routing, error response)', { url: dataUrl, method: 'GET', headers: {} }],
      [
        'GET /status → 200 (peer cert, partner SELECT)',
        { url: `${origin}/status`, method: 'GET', headers: {} },
      ],
      [
        'another oid → 404 (+ ES256, consent SELECT)',
        { url: `${origin}/rs/prns/someone-else`, method: 'GET', headers: bearer },
      ],
      [
        'full read → 200 (+ citizen SELECT, decrypt, audit INSERT)',
        { url: dataUrl, method: 'GET', headers: bearer },
      ],
    ];
    const statuses = [401, 200, 404, 200];
    for (const [i, [name, spec]] of steps.entries()) {
      await max(name, { ...spec, expectStatus: statuses[i]! });
    }
    return;
  }

  const data = await max(NAMES.data, { url: dataUrl, method: 'GET', headers: bearer });
  await max(
    NAMES.checks,
    { url: `${origin}/rs/prns/someone-else`, method: 'GET', headers: bearer, expectStatus: 404 },
    SHORT_S,
  );

  if (data && data.rps > 0 && fits(DURATION_S + WARMUP_S + 1)) {
    const rate = Math.max(1, Math.round(data.rps / 2));
    progress(`${NAMES.half} (${rate} req/s)…`);
    measured.set(
      NAMES.half,
      await runLoad({
        kind: 'paced',
        tls,
        connections: CONNECTIONS,
        durationS: DURATION_S,
        warmupS: WARMUP_S,
        rate,
        url: dataUrl,
        method: 'GET',
        headers: bearer,
      }),
    );
  }

  const tokenUrl = `${origin}/token`;
  if (fits(DURATION_S + WARMUP_S + 1)) {
    rotates = await probeRotation(s, tokenUrl);
    await max(NAMES.token, {
      url: tokenUrl,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      refreshGrant: {
        refreshToken: s.refreshToken,
        jwk: s.partner.signingJwk,
        clientId: s.partner.clientId,
        audience: s.partner.issuer,
        chain: rotates,
      },
    });
  }

  await max(NAMES.verified, verifiedSpec, SHORT_S);
  await max(NAMES.baseB, baselineSpec, SHORT_S);

  if (fits(RATE_LIMIT_PHASE_S)) {
    rateLimit = await measureRateLimit(s, progress);
  }

  // Last: it adds consents, audit entries and webhook traffic the rows above should not see.
  const seconds = Math.min(REVOCATION_MAX_S, (BUDGET_MS - (Date.now() - t0)) / 1000 - 10);
  if (seconds < 10) {
    notes.push('Skipped the revocation phase: it would not finish inside the time budget.');
    return;
  }
  progress(`revocation latency (up to ${REVOCATIONS} revocations, ${seconds.toFixed(0)} s)…`);
  revocationRan = true;
  await measureRevocations(s, revocation, {
    max: REVOCATIONS,
    deadline: Date.now() + seconds * 1000,
    progress,
  });
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error('bench: could not measure:', err);
  exitCode = 1;
}
clearTimeout(watchdog);
print();
await cleanup();
if (!BREAKDOWN) {
  const audit = await runAuditBench({
    postgresAdminUrl: process.env.BENCH_DATABASE_URL,
    budgetMs: 90_000,
    progress,
  });
  console.log('');
  console.log(auditTable(audit));
}
progress('done, cleaned up.');
process.exit(exitCode);
