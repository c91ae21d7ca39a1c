import { slidingReads } from './anomaly-rules.js';
import type { AnomalyStore } from './anomaly.store.js';

const WINDOW_MS = 60_000;
/** How often an instance adds its reads to the shared counters (one statement for all). */
export const READ_FLUSH_INTERVAL_MS = 1_000;

/**
 * Data API reads per consent in the last minute, counted across instances without a
 * database write per read: each instance counts in memory and, at most once a second,
 * adds what it counted to `security_read_counters` in one statement, learning the totals
 * of every instance in return. A read's estimate is the last known shared total plus what
 * this instance has not flushed yet, so one instance sees its own burst at once and the
 * others' within a second.
 */
export function createReadCounter(opts: {
  store: Pick<AnomalyStore, 'addReads'>;
  /** Real time for flush pacing; the rules' windows follow the injected clock. */
  monotonicNow?: () => number;
  onFlushError?: (err: unknown) => void;
}) {
  const monotonic = opts.monotonicNow ?? (() => performance.now());
  /** `${consentId}|${windowStartMs}` → reads not yet added to the shared counter. */
  const pending = new Map<string, number>();
  /** Same keys → reads being added right now (still counted while the flush runs). */
  let inFlight = new Map<string, number>();
  /** Same keys → the shared total as of the last flush. */
  const shared = new Map<string, number>();
  let lastFlush = monotonic();
  let flushing: Promise<void> | undefined;

  const key = (consentId: string, windowStart: number) => `${consentId}|${windowStart}`;
  const count = (k: string) =>
    (shared.get(k) ?? 0) + (inFlight.get(k) ?? 0) + (pending.get(k) ?? 0);

  async function flush(): Promise<void> {
    if (flushing) return flushing;
    const batch = [...pending];
    pending.clear();
    lastFlush = monotonic();
    if (batch.length === 0) return;
    inFlight = new Map(batch);
    flushing = (async () => {
      try {
        const totals = await opts.store.addReads(
          batch.map(([k, reads]) => {
            const [consentId, start] = k.split('|') as [string, string];
            return { consentId, windowStart: new Date(Number(start)), reads };
          }),
        );
        for (const t of totals) shared.set(key(t.consentId, t.windowStart.getTime()), t.reads);
      } catch (err) {
        // Put the counts back: the next flush tries again.
        for (const [k, reads] of batch) pending.set(k, (pending.get(k) ?? 0) + reads);
        opts.onFlushError?.(err);
      } finally {
        inFlight = new Map();
        flushing = undefined;
      }
    })();
    return flushing;
  }

  /** Forgets windows that no longer count (older than the previous one). */
  function prune(currentStart: number) {
    for (const map of [pending, shared]) {
      for (const k of map.keys()) {
        if (Number(k.slice(k.lastIndexOf('|') + 1)) < currentStart - WINDOW_MS) map.delete(k);
      }
    }
  }

  return {
    /** Counts one read at `now` and returns the estimated reads in the last 60 s. */
    hit(consentId: string, now: Date): number {
      const t = now.getTime();
      const start = t - (t % WINDOW_MS);
      const current = key(consentId, start);
      if (!pending.has(current) && !shared.has(current)) prune(start);
      pending.set(current, (pending.get(current) ?? 0) + 1);
      if (monotonic() - lastFlush >= READ_FLUSH_INTERVAL_MS) void flush();
      return slidingReads(count(key(consentId, start - WINDOW_MS)), count(current), t - start);
    },
    /** Adds pending counts to the shared counters now (tests; shutdown). */
    flush,
  };
}

export type ReadCounter = ReturnType<typeof createReadCounter>;
