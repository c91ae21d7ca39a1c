/*
 * The load generator, run as a child process (`fork` from bench/run.ts) so that it does
 * not share the event loop of the server it measures. It reports over the IPC channel:
 * `{ type: 'measuring' }` when the measured window opens (after the warm-up), then
 * `{ type: 'result', result }`.
 *
 * Two kinds of load:
 * - `max`: autocannon, closed loop, `connections` keep-alive mTLS connections each with
 *   one request in flight: the most the server serves.
 * - `paced`: open loop at a steady `rate` (undici Pool). Requests are due at t0 + k/rate
 *   whatever the server is doing, and latency counts from when a request was due, so a
 *   stall shows in the percentiles (no coordinated omission). autocannon's `overallRate`
 *   is not used here: it sends each connection's per-second budget back to back and then
 *   idles until the next second, so "half load" would be full load half of the time.
 */
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { assertionSigner, refreshGrantBody } from './assertion.js';
import { summarize, type LatencySummary } from './stats.js';

export interface TlsMaterial {
  ca: string;
  cert: string;
  key: string;
}

export interface RefreshGrant {
  refreshToken: string;
  jwk: Record<string, unknown>;
  clientId: string;
  audience: string;
  /** The server rotates refresh tokens: send each request the newest one (1 connection). */
  chain: boolean;
}

export interface LoadSpec {
  kind: 'max' | 'paced';
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  tls: TlsMaterial;
  connections: number;
  durationS: number;
  warmupS: number;
  /** Requests per second, `paced` only. */
  rate?: number;
  /** POST /token with grant_type=refresh_token and a fresh client assertion per request. */
  refreshGrant?: RefreshGrant;
  /** The status every response should have; default any 2xx. */
  expectStatus?: number;
}

export interface LoadResult extends LatencySummary {
  /** Expected responses (2xx, or `expectStatus`) per second in the measured window. */
  rps: number;
  ok: number;
  unexpected: number;
  errors: number;
  elapsedS: number;
  statusCodes: Record<string, number>;
  /** `paced` only: what was asked for. */
  targetRate?: number;
}

export type LoadMessage = { type: 'measuring' } | { type: 'result'; result: LoadResult };

/** Counts and latencies of one window. */
class Recorder {
  latencies: number[] = [];
  ok = 0;
  unexpected = 0;
  errors = 0;
  statusCodes: Record<string, number> = {};
  started = performance.now();
  constructor(private readonly expectStatus?: number) {}

  response(status: number, ms: number) {
    this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
    if (this.expectStatus ? status === this.expectStatus : status >= 200 && status < 300) {
      this.ok++;
      this.latencies.push(ms);
    } else {
      this.unexpected++;
    }
  }

  result(extra: Partial<LoadResult> = {}): LoadResult {
    const elapsedS = (performance.now() - this.started) / 1000;
    return {
      ...summarize(this.latencies),
      rps: this.ok / elapsedS,
      ok: this.ok,
      unexpected: this.unexpected,
      errors: this.errors,
      elapsedS,
      statusCodes: this.statusCodes,
      ...extra,
    };
  }
}

/** Request bodies: a refresh grant with a new assertion (unique jti) each time. */
function bodyMaker(grant: RefreshGrant | undefined) {
  if (!grant) return undefined;
  const sign = assertionSigner({
    jwk: grant.jwk,
    clientId: grant.clientId,
    audience: grant.audience,
  });
  let refreshToken = grant.refreshToken;
  return {
    next: () => refreshGrantBody(refreshToken, sign()),
    /** Rotation: the response names the refresh token to use next. */
    seen(body: string) {
      if (!grant.chain) return;
      try {
        const rt = (JSON.parse(body) as { refresh_token?: unknown }).refresh_token;
        if (typeof rt === 'string') refreshToken = rt;
      } catch {
        // an error page: keep the token we have
      }
    },
  };
}

type Bodies = ReturnType<typeof bodyMaker>;

/** One autocannon run; with `recorder`, its responses are counted with exact latencies. */
function cannon(
  spec: LoadSpec,
  body: Bodies,
  durationS: number,
  recorder?: Recorder,
): Promise<void> {
  const url = new URL(spec.url);
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: url.origin,
        connections: spec.refreshGrant?.chain ? 1 : spec.connections,
        pipelining: 1,
        duration: durationS,
        // The server certificate is the portal's own; autocannon does not check it, the
        // server checks ours (the listener refuses a connection without it).
        tlsOptions: { ca: spec.tls.ca, cert: spec.tls.cert, key: spec.tls.key },
        servername: 'localhost',
        requests: [
          {
            method: spec.method,
            path: url.pathname + url.search,
            headers: spec.headers,
            ...(body
              ? {
                  setupRequest: (req: autocannon.Request) => ({ ...req, body: body.next() }),
                  ...(spec.refreshGrant?.chain
                    ? { onResponse: (_status: number, text: string) => body.seen(text) }
                    : {}),
                }
              : {}),
          },
        ],
      },
      (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
    );
    if (recorder) {
      instance.on('response', (_client, status, _bytes, ms) => recorder.response(status, ms));
      instance.on('reqError', () => recorder.errors++);
    }
  });
}

async function maxLoad(spec: LoadSpec): Promise<LoadResult> {
  // One body maker for warm-up and measurement: with rotation, the chain continues.
  const body = bodyMaker(spec.refreshGrant);
  if (spec.warmupS > 0) await cannon(spec, body, spec.warmupS);
  await send({ type: 'measuring' });
  const recorder = new Recorder(spec.expectStatus);
  await cannon(spec, body, spec.durationS, recorder);
  return recorder.result();
}

async function pacedLoad(spec: LoadSpec): Promise<LoadResult> {
  const rate = spec.rate!;
  const url = new URL(spec.url);
  const body = bodyMaker(spec.refreshGrant);
  const pool = new Pool(url.origin, {
    connections: spec.connections,
    pipelining: 1,
    connect: { ...spec.tls, servername: 'localhost' },
  });
  const fire = async (due: number, recorder: Recorder | undefined) => {
    try {
      const res = await pool.request({
        path: url.pathname + url.search,
        method: spec.method,
        headers: spec.headers,
        ...(body ? { body: body.next() } : {}),
      });
      const text = await res.body.text();
      body?.seen(text);
      recorder?.response(res.statusCode, performance.now() - due);
    } catch {
      if (recorder) recorder.errors++;
    }
  };
  const run = async (durationS: number, recorder?: Recorder) => {
    const t0 = performance.now();
    const total = Math.round(rate * durationS);
    const inFlight = new Set<Promise<void>>();
    let sent = 0;
    while (sent < total) {
      const now = performance.now();
      // Everything due by now goes out now; a late tick sends several at once.
      while (sent < total && t0 + (sent * 1000) / rate <= now) {
        const p = fire(t0 + (sent * 1000) / rate, recorder);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        sent++;
      }
      const nextDue = t0 + (sent * 1000) / rate;
      await new Promise((r) => setTimeout(r, Math.max(0, nextDue - performance.now())));
    }
    await Promise.all(inFlight);
  };
  try {
    if (spec.warmupS > 0) await run(spec.warmupS);
    await send({ type: 'measuring' });
    const recorder = new Recorder(spec.expectStatus);
    await run(spec.durationS, recorder);
    return recorder.result({ targetRate: rate });
  } finally {
    await pool.close();
  }
}

function send(message: LoadMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

async function main() {
  const spec = JSON.parse(process.env.BENCH_LOAD_SPEC ?? '') as LoadSpec;
  const result = spec.kind === 'paced' ? await pacedLoad(spec) : await maxLoad(spec);
  await send({ type: 'result', result });
  process.disconnect();
}

if (process.send) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
