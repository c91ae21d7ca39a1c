/*
 * Revocation latency: what happens after a citizen presses «Отключить» (J5), measured on
 * the real demo bank, many times over.
 *
 * Each round: the bank links its customer Иванов through its own J2 flow, driven over HTTP
 * as a browser would (bank login once; then password re-confirmation, PAR, the portal's
 * consent screen with its SMS code, the callback, the bank's token exchange and vault).
 * The bank's access token for that consent, taken from its vault (this process runs the
 * bank, so it holds the bank's keyring), then reads GET /rs/prns/{sub} over the bank's
 * mTLS certificate in a tight loop, in a child process (bench/revocation-reader.ts). While
 * it reads, Иванов revokes the consent on the portal's «Управление доступом» page with the
 * one-time code from the dev outbox. The portal tells the bank (consent.revoked webhook),
 * the bank shreds the vault row and sends back its signed deletion receipt.
 *
 * Every figure counts from the commit: the consent's `revoked` event time as the portal
 * recorded it (taken just before the transaction that commits it, so a figure can only
 * be overstated). The ends are what the portal recorded too, or the reader saw:
 *  (a) the response to the first refused read;
 *  (b) consent.revoked delivered to the bank (the webhook's delivered_at: the bank answered 2xx);
 *  (c) the bank's signed receipt recorded (the consent's `deletion_confirmed` event).
 * And reads served after the revocation, two ways. Against the recorded time: 200 responses
 * to reads sent after it, and `data.read` audit entries of the consent stamped after it.
 * The time is taken just before the transaction commits, so a read whose consent check
 * ran inside that transaction is served correctly yet counted here; on PGlite (one
 * connection) no read runs inside it, on PostgreSQL some do. Against the commit itself:
 * 200 responses to reads sent once it was certainly done (after the citizen's
 * confirmation page came back, or after a read was refused), which must be 0 anywhere.
 *
 * Rounds run one after another (the bank keeps one link per customer) until the count or
 * the deadline is reached.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Kysely } from 'kysely';
import {
  createPortalEventStore,
  type PortalEventTables,
} from '../src/bank/portal-access/portal-events.store.js';
import {
  createPortalLinkStore,
  type PortalLinkTables,
} from '../src/bank/portal-access/portal-link.store.js';
import {
  openJsonWithKey,
  parseKeySealed,
  unwrapSubjectKey,
  type WrappedKey,
} from '../src/platform/crypto/index.js';
import { HttpClient } from '../test/support/demo-process.js';
import { citizenApproves, outboxCode } from '../test/support/partner-client.js';
import type { Row, Verdict } from './report.js';
import type { Read, ReaderCommand, ReaderMessage } from './revocation-reader.js';
import type { BenchServices } from './services.js';
import { summarize } from './stats.js';

export const REVOCATION_TARGETS = { deliveredP99Ms: 1000, receiptP99Ms: 2000 };

const PASSWORD = 'Demo-Passw0rd!';
/** A bank customer who is also a portal citizen ready to connect (e-mail confirmed). */
const CUSTOMER = { username: 'ivanov', phone: '+79990000001' };
/** How long a round waits for the webhook delivery and the receipt before giving up. */
const EVENT_WAIT_MS = 5_000;
/**
 * The portal's webhook worker polls every 500 ms (startWorker's default). Rounds of equal
 * length would revoke at the same point of its cycle every time and measure one delivery
 * delay over and over; a random pause of up to one interval before each revocation
 * samples the whole cycle.
 */
const WORKER_INTERVAL_MS = 500;
const POLL_MS = 20;

/** One revocation; times in ms from the commit, undefined when it never happened. */
export interface RevocationSample {
  consentId: string;
  /** (a) the response to the first refused read. */
  refusedMs: number | undefined;
  /** What the first refusal said, e.g. `403 CONSENT_INACTIVE`. */
  refusal: string | undefined;
  /** (b) consent.revoked delivered to the bank. */
  deliveredMs: number | undefined;
  /** (c) the bank's signed deletion receipt recorded. */
  receiptMs: number | undefined;
  /** The revocation confirmation page reached the citizen. */
  confirmedMs: number;
  reads: number;
  /** 200 responses to reads sent after the recorded revocation time. */
  servedAfterCommit: number;
  /** The latest such read was sent this long after the recorded time (ms). */
  servedLagMs: number | undefined;
  /** data.read audit entries of the consent stamped after the recorded revocation time. */
  auditedAfterCommit: number;
  /**
   * 200 responses to reads sent once the commit was certainly done: after the citizen's
   * confirmation page came back or after a read was refused, whichever came first.
   */
  servedOnceCertain: number;
  /** Reads that failed at the network level. */
  readErrors: number;
}

export interface RevocationResult {
  samples: RevocationSample[];
  /** Why the phase stopped early, if it did. */
  error?: string;
  elapsedS: number;
}

export const emptyRevocationResult = (): RevocationResult => ({ samples: [], elapsedS: 0 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reader child process and its messages, in order. */
function startReader(tls: { ca: string; cert: string; key: string }) {
  const child: ChildProcess = fork(path.join(import.meta.dirname, 'revocation-reader.ts'), [], {
    env: { ...process.env, BENCH_READER_TLS: JSON.stringify(tls) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const queue: ReaderMessage[] = [];
  let wake: (() => void) | undefined;
  let exited = false;
  child.on('message', (m: ReaderMessage) => {
    queue.push(m);
    wake?.();
  });
  child.on('exit', () => {
    exited = true;
    wake?.();
  });
  return {
    command: (c: ReaderCommand) => child.send(c),
    async next(timeoutMs: number): Promise<ReaderMessage> {
      const deadline = Date.now() + timeoutMs;
      while (queue.length === 0) {
        if (exited) throw new Error('the reader process exited');
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`the reader said nothing for ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      return queue.shift()!;
    },
    close() {
      if (exited) return;
      child.send({ type: 'exit' } satisfies ReaderCommand);
      setTimeout(() => child.kill('SIGKILL'), 2_000).unref();
    },
  };
}

/** Polls `probe` until it returns a value, or gives up after `ms`. */
async function until<T>(ms: number, probe: () => Promise<T | undefined>): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined || Date.now() > deadline) return value;
    await sleep(POLL_MS);
  }
}

function csrf(html: string, what: string): string {
  try {
    return HttpClient.csrf(html);
  } catch {
    throw new Error(`${what}: no CSRF token in the page`);
  }
}

/** The customer's bank session: login with the password and the SMS code. */
async function bankLogin(bankUrl: string): Promise<HttpClient> {
  const bank = new HttpClient(bankUrl);
  const login = await bank.request('/login');
  const afterPassword = await bank.request('/login', {
    form: {
      _csrf: csrf(login.body, 'bank login'),
      username: CUSTOMER.username,
      password: PASSWORD,
    },
  });
  if (afterPassword.status !== 303) throw new Error(`bank login: ${afterPassword.status}`);
  const codePage = await bank.request('/login/code');
  const done = await bank.request('/login/code', {
    form: {
      _csrf: csrf(codePage.body, 'bank login code'),
      code: await outboxCode(bankUrl, CUSTOMER.phone),
    },
  });
  if (done.status !== 303) throw new Error(`bank login code: ${done.status}`);
  return bank;
}

/**
 * Measures revocations until `max` are done or the next one might not finish by
 * `deadline` (epoch ms). Fills `result` as it goes, so a watchdog can print it.
 */
export async function measureRevocations(
  s: BenchServices,
  result: RevocationResult,
  opts: { max: number; deadline: number; progress: (text: string) => void },
): Promise<void> {
  const started = Date.now();
  const { portal, bank } = s;
  const bankDb = bank.runtime.db as unknown as Kysely<PortalLinkTables & PortalEventTables>;
  const vault = createPortalLinkStore(bankDb);
  const reader = startReader({ ca: s.partner.ca, cert: s.partner.cert, key: s.partner.key });
  const dataApi = `https://127.0.0.1:${new URL(s.mtlsOrigin).port}/rs/prns/`;
  try {
    // The bank subscribes to the portal's webhooks in the background when it starts.
    const subscribed = await until(10_000, async () =>
      (await createPortalEventStore(bankDb).subscription()) ? true : undefined,
    );
    if (!subscribed) throw new Error('the bank never subscribed to the portal webhooks');
    const customerId = await bank.app.customers.findIdByUsername(CUSTOMER.username);
    if (!customerId) throw new Error(`no bank customer ${CUSTOMER.username}`);
    const bankBrowser = await bankLogin(bank.url);
    const portalBrowser = new HttpClient(portal.url);
    let portalCsrf: string | undefined;
    let longestRound = 0;

    while (result.samples.length < opts.max) {
      const roundStart = Date.now();
      if (roundStart + Math.max(2_000, longestRound * 1.5) > opts.deadline) break;

      // J2 at the bank: re-confirm the password, off to the portal, back with a code.
      const form = await bankBrowser.request('/security/portal/link');
      const toPortal = await bankBrowser.request('/security/portal/link', {
        form: { _csrf: csrf(form.body, 'bank link'), password: PASSWORD },
      });
      if (toPortal.status !== 303 || !toPortal.location)
        throw new Error(`bank link start: ${toPortal.status}`);
      const { callback } = await citizenApproves(portal.url, new URL(toPortal.location), {
        browser: portalBrowser,
        phone: CUSTOMER.phone,
      });
      const back = await bankBrowser.request(callback.href);
      if (back.status !== 303 || !back.location?.includes('linked=1'))
        throw new Error(`bank callback: ${back.status} ${back.body.slice(0, 200)}`);

      // The bank's own token for this consent, from its vault.
      const row = await vault.get(customerId);
      if (!row) throw new Error('the bank vault holds no link after linking');
      const key = await unwrapSubjectKey(
        bank.runtime.keyring,
        JSON.parse(row.subject_key) as WrappedKey,
      );
      // The associated data portal-link.service seals the tokens with.
      const tokens = openJsonWithKey<{ access_token: string }>(
        key,
        parseKeySealed(row.tokens),
        `portal_links/${customerId}/tokens`,
      );
      key.fill(0);
      const consentId = row.consent_id;

      reader.command({
        type: 'start',
        url: dataApi + encodeURIComponent(row.portal_sub),
        token: tokens.access_token,
      });
      const first = await reader.next(5_000);
      if (first.type !== 'reading')
        throw new Error(`the bank's token did not read: ${first.refusal ?? 'no answer'}`);

      await sleep(Math.random() * WORKER_INTERVAL_MS);
      // J5 at the portal: «Отключить», then the code.
      portalCsrf ??= csrf((await portalBrowser.request('/access')).body, 'portal access page');
      const asked = await portalBrowser.request(`/access/${consentId}/revoke`, {
        form: { _csrf: portalCsrf },
      });
      if (asked.status !== 200) throw new Error(`portal revoke: ${asked.status}`);
      const code = await outboxCode(portal.url, CUSTOMER.phone);
      const confirmed = await portalBrowser.request(`/access/${consentId}/revoke/confirm`, {
        form: { _csrf: csrf(asked.body, 'portal revoke'), code },
      });
      const confirmedAt = Date.now();
      if (confirmed.status !== 200) throw new Error(`portal revoke confirm: ${confirmed.status}`);
      portalCsrf = csrf(confirmed.body, 'portal access page');

      const done = await reader.next(15_000);
      if (done.type !== 'done') throw new Error('the reader did not finish');

      const events = await until(EVENT_WAIT_MS, async () => {
        const list = await portal.app.consents.events(consentId);
        const delivered = await portal.app.webhooks.firstDelivery(
          s.partner.clientId,
          'consent.revoked',
          'consent_id',
          consentId,
        );
        return delivered && list.some((e) => e.type === 'deletion_confirmed')
          ? { list, delivered }
          : undefined;
      });
      const list = events?.list ?? (await portal.app.consents.events(consentId));
      const delivered =
        events?.delivered ??
        (await portal.app.webhooks.firstDelivery(
          s.partner.clientId,
          'consent.revoked',
          'consent_id',
          consentId,
        ));
      const revoked = list.find((e) => e.type === 'revoked');
      if (!revoked) throw new Error(`consent ${consentId} has no revoked event`);
      const commit = revoked.at.getTime();
      const receipt = list.find((e) => e.type === 'deletion_confirmed');
      const audited = await portal.app.audit.listForSubjects(
        [`consent:${consentId}`],
        'data.read',
        100_000,
      );
      const reads: Read[] = done.reads;
      const refused = reads.find(([, , status]) => status !== 200 && status !== 0);
      const servedAfter = (t: number) =>
        reads.filter(([sent, , status]) => status === 200 && sent > t);
      const late = servedAfter(commit);
      result.samples.push({
        consentId,
        refusedMs: refused ? refused[1] - commit : undefined,
        refusal: done.refusal,
        deliveredMs: delivered ? delivered.getTime() - commit : undefined,
        receiptMs: receipt ? receipt.at.getTime() - commit : undefined,
        confirmedMs: confirmedAt - commit,
        reads: reads.length,
        servedAfterCommit: late.length,
        servedLagMs: late.length > 0 ? Math.max(...late.map(([sent]) => sent - commit)) : undefined,
        auditedAfterCommit: audited.filter((r) => new Date(r.at).getTime() > commit).length,
        servedOnceCertain: servedAfter(Math.min(confirmedAt, refused?.[1] ?? Infinity)).length,
        readErrors: reads.filter(([, , status]) => status === 0).length,
      });
      result.elapsedS = (Date.now() - started) / 1000;
      longestRound = Math.max(longestRound, Date.now() - roundStart);
      if (result.samples.length % 10 === 0)
        opts.progress(`revocation latency: ${result.samples.length} revocations…`);
    }
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err);
  } finally {
    result.elapsedS = (Date.now() - started) / 1000;
    reader.close();
  }
}

const defined = (values: (number | undefined)[]) =>
  values.filter((v): v is number => v !== undefined);

/** The phase's rows for bench/report.ts's table. */
export function revocationRows(result: RevocationResult): Row[] {
  const { samples } = result;
  const n = samples.length;
  const latencyRow = (
    name: string,
    values: (number | undefined)[],
    limitMs: number | undefined,
  ): Row => {
    const present = defined(values);
    const { p50, p99 } = summarize(present);
    let verdict: Verdict;
    if (n === 0) verdict = 'not run';
    // A read never refused: the revocation did not stop the reads.
    else if (limitMs === undefined) verdict = present.length === n ? 'info' : 'FAIL';
    // A missing event is one that did not come within the wait: a miss, not a gap.
    else verdict = present.length === n && p99 <= limitMs ? 'PASS' : 'FAIL';
    const missing = n - present.length;
    return {
      name: `${name}${missing > 0 ? ` (${missing} of ${n} never came)` : ''}`,
      latency: { p50, p99 },
      target: limitMs === undefined ? '' : `p99 ≤ ${limitMs} ms`,
      verdict,
    };
  };
  const sum = (f: (x: RevocationSample) => number) => samples.reduce((t, x) => t + f(x), 0);
  const served = sum((x) => x.servedAfterCommit);
  const audited = sum((x) => x.auditedAfterCommit);
  const certain = sum((x) => x.servedOnceCertain);
  const reads = sum((x) => x.reads);
  return [
    latencyRow(
      `revocation commit → first refused read (${n} revocations)`,
      samples.map((x) => x.refusedMs),
      undefined,
    ),
    {
      name: `reads served after the recorded revocation time: ${served} answered, ${audited} audited (of ${reads})`,
      target: '0',
      verdict: n === 0 ? 'not run' : served === 0 && audited === 0 ? 'PASS' : 'FAIL',
    },
    {
      name: `reads served once the commit was certainly done: ${certain}`,
      target: '0',
      verdict: n === 0 ? 'not run' : certain === 0 ? 'PASS' : 'FAIL',
    },
    latencyRow(
      'commit → consent.revoked delivered to the bank',
      samples.map((x) => x.deliveredMs),
      REVOCATION_TARGETS.deliveredP99Ms,
    ),
    latencyRow(
      'commit → signed deletion receipt recorded',
      samples.map((x) => x.receiptMs),
      REVOCATION_TARGETS.receiptP99Ms,
    ),
  ];
}

/** What the rows mean, for the notes under the table. */
export function revocationNotes(result: RevocationResult): string[] {
  const { samples } = result;
  const refusals = [...new Set(samples.map((x) => x.refusal ?? 'none'))].join(', ');
  const confirmed = summarize(samples.map((x) => x.confirmedMs));
  const errors = samples.reduce((sum, x) => sum + x.readErrors, 0);
  const lags = defined(samples.map((x) => x.servedLagMs));
  return [
    `Revocation: ${samples.length} consents of the demo bank, each linked through the bank's own J2 flow over HTTP and revoked by the citizen on the portal's «Управление доступом» page with the SMS code from the dev outbox, one after another in ${result.elapsedS.toFixed(1)} s, while the bank's token (from its vault) read GET /rs/prns/{sub} over mTLS back to back (one request in flight) in a child process.`,
    `  Times count from the commit as the portal records it: the consent's 'revoked' event time. First refused read: when its response arrived (refusals seen: ${refusals}; ${errors} network errors). Delivered: the webhook's delivered_at (the bank answered 2xx). Receipt: the consent's 'deletion_confirmed' event. The citizen's confirmation page came back ${confirmed.p50.toFixed(0)} ms (p50) after the recorded time.`,
    '  Served after the recorded time: 200 responses to reads sent after it, and data.read audit entries stamped after it. Served once the commit was certainly done: 200 responses to reads sent after the confirmation page came back or after a read was refused (each reader goes on for a few reads after its first refusal), whichever came first.',
    ...(lags.length > 0
      ? [
          `  Reads sent up to ${Math.max(...lags)} ms after the recorded revocation time were served in ${lags.length} of ${samples.length} revocations: the time is taken before the transaction that commits the revocation, and reads whose consent check ran while it was open still saw the consent active (PostgreSQL allows that; PGlite's single connection runs nothing inside it). Correct, but the citizen's access log can show a read stamped just after «Доступ отключён».`,
        ]
      : []),
    ...(result.error ? [`  The revocation phase stopped early: ${result.error}`] : []),
  ];
}
