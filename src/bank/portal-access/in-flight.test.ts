import { describe, expect, it } from 'vitest';
import { ConsentEndedError, createInFlightRegistry } from './in-flight.js';

/** A promise the test settles by hand. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('bank: operations in flight under a consent', () => {
  it('aborts every operation under the ended consent, and only those', () => {
    const registry = createInFlightRegistry();
    const a1 = registry.begin('c-1');
    const a2 = registry.begin('c-1');
    const b = registry.begin('c-2');
    expect(registry.running('c-1')).toBe(2);
    expect(registry.abort('c-1', 'revoked')).toBe(2);
    expect(a1.signal.aborted && a2.signal.aborted).toBe(true);
    expect(a1.signal.reason).toBeInstanceOf(ConsentEndedError);
    expect((a1.signal.reason as ConsentEndedError).endCause).toBe('revoked');
    expect(() => a2.throwIfEnded()).toThrow(ConsentEndedError);
    expect(b.signal.aborted).toBe(false);
    expect(registry.running('c-1')).toBe(0);
    expect(registry.running('c-2')).toBe(1);
    b.end();
    b.end();
    expect(registry.running('c-2')).toBe(0);
  });

  it('guard rejects at once when the consent ends, and drops a result that arrives later', async () => {
    const registry = createInFlightRegistry();
    const op = registry.begin('c-1');
    const work = deferred<string>();
    const guarded = op.guard(work.promise);
    registry.abort('c-1', 'expired');
    await expect(guarded).rejects.toMatchObject({ consentId: 'c-1', endCause: 'expired' });
    work.resolve('late answer'); // nothing to see: the caller has moved on
    // A failure of the abandoned work after the abort is no unhandled rejection either.
    const failing = deferred<string>();
    const guardedFailing = op.guard(failing.promise);
    failing.reject(new Error('boom'));
    await expect(guardedFailing).rejects.toBeInstanceOf(ConsentEndedError);
  });

  it('guard passes results and errors through while the consent lasts', async () => {
    const registry = createInFlightRegistry();
    await registry.run('c-1', async (op) => {
      expect(await op.guard(Promise.resolve(42))).toBe(42);
      await expect(op.guard(Promise.reject(new Error('portal down')))).rejects.toThrow(
        'portal down',
      );
    });
    expect(registry.running('c-1')).toBe(0);
  });

  it('an operation that starts after the consent ended is aborted from the start', async () => {
    const registry = createInFlightRegistry();
    expect(registry.abort('c-1', 'revoked')).toBe(0);
    expect(registry.endedBecause('c-1')).toBe('revoked');
    const late = registry.begin('c-1');
    expect(late.signal.aborted).toBe(true);
    await expect(late.guard(Promise.resolve('data'))).rejects.toMatchObject({
      endCause: 'revoked',
    });
    // A second end keeps the first cause.
    registry.abort('c-1', 'unlinked');
    expect(registry.endedBecause('c-1')).toBe('revoked');
  });

  it('run unregisters however the operation ends', async () => {
    const registry = createInFlightRegistry();
    await expect(
      registry.run('c-1', async () => {
        expect(registry.running('c-1')).toBe(1);
        throw new Error('failed');
      }),
    ).rejects.toThrow('failed');
    expect(registry.running('c-1')).toBe(0);
  });

  it('remembers a bounded number of ended consents', () => {
    const registry = createInFlightRegistry({ rememberEnded: 2 });
    registry.abort('c-1', 'revoked');
    registry.abort('c-2', 'revoked');
    registry.abort('c-3', 'expired');
    expect(registry.endedBecause('c-1')).toBeUndefined();
    expect(registry.endedBecause('c-2')).toBe('revoked');
    expect(registry.endedBecause('c-3')).toBe('expired');
  });
});
