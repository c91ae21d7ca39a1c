/**
 * Operations that use a portal consent (a test request, a token refresh, fetching data
 * at link time) register here by consent id; when the consent ends (the portal says
 * revoked or expired, or the customer unlinks) they are aborted at once and must write
 * nothing back. In-process: the bank runs as one process on its own database.
 */

/** Why a consent ended, as the bank learnt it. */
export type ConsentEndCause = 'revoked' | 'expired' | 'inactive' | 'unlinked';

/** The abort reason an operation sees when its consent ends under it. */
export class ConsentEndedError extends Error {
  constructor(
    readonly consentId: string,
    readonly endCause: ConsentEndCause,
  ) {
    super(`consent ${consentId} ended (${endCause}) during the operation`);
    this.name = 'ConsentEndedError';
  }
}

/** One running operation under a consent. */
export interface InFlightOperation {
  readonly signal: AbortSignal;
  /** Throws ConsentEndedError if the consent ended: call it before any write. */
  throwIfEnded(): void;
  /**
   * Waits for `work`, but rejects with ConsentEndedError as soon as the consent ends,
   * and also if it ended while `work` ran (its result must not be used).
   */
  guard<T>(work: Promise<T>): Promise<T>;
  /** Unregisters the operation (idempotent). */
  end(): void;
}

export function createInFlightRegistry(opts: { rememberEnded?: number } = {}) {
  const remember = opts.rememberEnded ?? 10_000;
  const running = new Map<string, Set<AbortController>>();
  // Consents known to have ended, oldest first: an operation that read the vault row just
  // before the shred and registers just after it must still see the end.
  const ended = new Map<string, ConsentEndCause>();

  function begin(consentId: string): InFlightOperation {
    const controller = new AbortController();
    const cause = ended.get(consentId);
    if (cause) controller.abort(new ConsentEndedError(consentId, cause));
    let set = running.get(consentId);
    if (!set) running.set(consentId, (set = new Set()));
    set.add(controller);
    const { signal } = controller;
    return {
      signal,
      throwIfEnded: () => signal.throwIfAborted(),
      guard<T>(work: Promise<T>): Promise<T> {
        if (signal.aborted) {
          work.catch(() => undefined);
          return Promise.reject(signal.reason as Error);
        }
        return new Promise<T>((resolve, reject) => {
          const onAbort = () => reject(signal.reason as Error);
          signal.addEventListener('abort', onAbort, { once: true });
          work.then(
            (value) => {
              signal.removeEventListener('abort', onAbort);
              if (signal.aborted) reject(signal.reason as Error);
              else resolve(value);
            },
            (err: unknown) => {
              signal.removeEventListener('abort', onAbort);
              reject(signal.aborted ? (signal.reason as Error) : err);
            },
          );
        });
      },
      end() {
        const current = running.get(consentId);
        if (!current) return;
        current.delete(controller);
        if (current.size === 0) running.delete(consentId);
      },
    };
  }

  return {
    begin,

    /** Runs `fn` as an operation under the consent; unregisters it however it ends. */
    async run<T>(consentId: string, fn: (op: InFlightOperation) => Promise<T>): Promise<T> {
      const op = begin(consentId);
      try {
        return await fn(op);
      } finally {
        op.end();
      }
    },

    /** The consent ended: aborts every operation under it; how many there were. */
    abort(consentId: string, cause: ConsentEndCause): number {
      if (!ended.has(consentId)) {
        ended.set(consentId, cause);
        if (ended.size > remember) ended.delete(ended.keys().next().value!);
      }
      const set = running.get(consentId);
      running.delete(consentId);
      if (!set) return 0;
      const reason = new ConsentEndedError(consentId, ended.get(consentId)!);
      for (const controller of set) controller.abort(reason);
      return set.size;
    },

    /** Why the consent ended, if this process saw it end. */
    endedBecause(consentId: string): ConsentEndCause | undefined {
      return ended.get(consentId);
    },

    /** Operations currently running under the consent. */
    running(consentId: string): number {
      return running.get(consentId)?.size ?? 0;
    },
  };
}

export type InFlightRegistry = ReturnType<typeof createInFlightRegistry>;
