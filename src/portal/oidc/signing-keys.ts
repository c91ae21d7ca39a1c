import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Clock } from '../../platform/clock.js';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import type { OidcKeyTable, OidcStore } from './oidc.store.js';

/**
 * The portal's token signing keys: ES256, private halves sealed in the database
 * (oidc_keys). Their life (docs/keys.md):
 *
 *   next     in the JWKS, signs nothing. There is always one, so relying parties that
 *            cache the JWKS already hold the key that will sign next.
 *   current  signs ID tokens and access tokens. Exactly one.
 *   retired  stopped signing; stays in the JWKS (and is accepted by the data API) for
 *            `retiredPublishMs`, longer than any token it signed lives; then deleted.
 *
 * `soglasie keys rotate` asks for the next key to be promoted. It is promoted once it
 * has been published for `publishLeadMs` (at once with --immediately): by the CLI itself
 * when that time has come, otherwise by the first running portal that refreshes its keys
 * after it. Every running portal re-reads the table at most every `refreshMs` (on the
 * next OIDC request or data API read) and switches its signer then: see live-provider.ts.
 */
export const SIGNING_ALG = 'ES256';

export interface SigningKeyTiming {
  /** Running portals re-read oidc_keys at most this often. */
  refreshMs: number;
  /** A next key is published at least this long before it signs. */
  publishLeadMs: number;
  /** A retired key stays published this long after it stopped signing. */
  retiredPublishMs: number;
}

export const SIGNING_KEY_TIMING: SigningKeyTiming = Object.freeze({
  refreshMs: 30_000,
  publishLeadMs: 60 * 60_000,
  // Tokens live 10 minutes (provider.ts ttl); + the refresh lag of other instances + margin.
  retiredPublishMs: 15 * 60_000,
});

/** Cache-Control max-age of /jwks: well under publishLeadMs. */
export const JWKS_MAX_AGE_SECONDS = 300;

export interface SigningKeyInfo {
  kid: string;
  state: OidcKeyTable['state'];
  createdAt: Date;
  publishedAt: Date | null;
  promoteRequestedAt: Date | null;
  promotedAt: Date | null;
  retiredAt: Date | null;
  publishUntil: Date | null;
}

export interface SigningKeySnapshot {
  loadedAt: Date;
  currentKid: string;
  /** Public keys to publish and to accept: current, next, then retired ones in their window. */
  published: JWK[];
  keys: SigningKeyInfo[];
}

export type SigningKeyEvent =
  | { type: 'signing_key.created'; kid: string; state: 'current' | 'next' }
  | { type: 'signing_key.promoted'; from: string; to: string; next: string; publishUntil: Date };

export interface SigningKeyDeps {
  store: OidcStore;
  sealer: Sealer;
  clock: Clock;
  timing?: Partial<SigningKeyTiming>;
  /** Told of keys made and promoted (the portal writes them to the audit log). */
  onEvent?: (event: SigningKeyEvent) => Promise<void> | void;
  /** Refresh failures: the last good keys stay in use. */
  onError?: (err: unknown) => void;
}

async function newKeyRow(
  sealer: Sealer,
  state: 'current' | 'next',
  now: Date,
): Promise<OidcKeyTable> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
  return {
    kid,
    alg: SIGNING_ALG,
    private_jwk: serializeSealed(await sealer.seal(privateJwk, recordAad('oidc_keys', kid))),
    public_jwk: { ...publicJwk, kid, alg: SIGNING_ALG, use: 'sig' },
    state,
    created_at: now,
  };
}

/** Makes sure a current and a next key exist; safe when two instances start at once. */
async function ensureKeys(deps: SigningKeyDeps, now: Date): Promise<OidcKeyTable[]> {
  let rows = await deps.store.listKeys();
  for (const state of ['current', 'next'] as const) {
    if (rows.some((r) => r.state === state)) continue;
    const row = await newKeyRow(deps.sealer, state, now);
    try {
      await deps.store.insertKey(row);
      await deps.onEvent?.({ type: 'signing_key.created', kid: row.kid, state });
    } catch (err) {
      // Another instance created it at the same moment; use theirs.
      if (!(await deps.store.listKeys()).some((r) => r.state === state)) throw err;
    }
    rows = await deps.store.listKeys();
  }
  return rows;
}

function timingOf(deps: SigningKeyDeps): SigningKeyTiming {
  return { ...SIGNING_KEY_TIMING, ...deps.timing };
}

/** When a requested promotion may happen: the next key published for the lead time. */
function promotionDueAt(next: OidcKeyTable, timing: SigningKeyTiming): Date | null {
  if (!next.promote_requested_at || !next.published_at) return null;
  return new Date(new Date(next.published_at).getTime() + timing.publishLeadMs);
}

async function promote(
  deps: SigningKeyDeps,
  current: OidcKeyTable,
  next: OidcKeyTable,
  now: Date,
): Promise<{ promoted: boolean; newNext?: string; publishUntil?: Date }> {
  const newNext = await newKeyRow(deps.sealer, 'next', now);
  const publishUntil = new Date(now.getTime() + timingOf(deps).retiredPublishMs);
  const promoted = await deps.store.promote({
    currentKid: current.kid,
    nextKid: next.kid,
    now,
    publishUntil,
    newNext,
  });
  if (!promoted) return { promoted: false };
  await deps.onEvent?.({
    type: 'signing_key.promoted',
    from: current.kid,
    to: next.kid,
    next: newNext.kid,
    publishUntil,
  });
  return { promoted: true, newNext: newNext.kid, publishUntil };
}

const ORDER = { current: 0, next: 1, retired: 2 } as const;

function info(row: OidcKeyTable): SigningKeyInfo {
  const date = (d: Date | null | undefined) => (d ? new Date(d) : null);
  return {
    kid: row.kid,
    state: row.state,
    createdAt: new Date(row.created_at),
    publishedAt: date(row.published_at),
    promoteRequestedAt: date(row.promote_requested_at),
    promotedAt: date(row.promoted_at),
    retiredAt: date(row.retired_at),
    publishUntil: date(row.publish_until),
  };
}

function publishable(row: OidcKeyTable, now: Date): boolean {
  if (row.state !== 'retired') return true;
  return row.publish_until != null && new Date(row.publish_until).getTime() > now.getTime();
}

/**
 * The signing keys as one running portal sees them: loaded at most every `refreshMs`
 * (by the injected clock), single-flight. Loading marks the keys it publishes, promotes
 * a next key whose time has come and deletes retired keys past their window.
 */
export function createSigningKeys(deps: SigningKeyDeps) {
  const timing = timingOf(deps);
  let cached: SigningKeySnapshot | undefined;
  let loading: Promise<SigningKeySnapshot> | undefined;
  let forcedAt = -Infinity;

  async function load(): Promise<SigningKeySnapshot> {
    const now = deps.clock.now();
    await ensureKeys(deps, now);
    await deps.store.markPublished(now);
    let rows = await deps.store.listKeys();
    const current = rows.find((r) => r.state === 'current');
    const next = rows.find((r) => r.state === 'next');
    const due = next && promotionDueAt(next, timing);
    if (current && next && due && due.getTime() <= now.getTime()) {
      await promote(deps, current, next, now);
      await deps.store.markPublished(now);
    }
    await deps.store.deleteRetiredBefore(now);
    rows = (await deps.store.listKeys()).sort((a, b) => ORDER[a.state] - ORDER[b.state]);
    const currentKid = rows.find((r) => r.state === 'current')?.kid;
    if (!currentKid) throw new Error('no current signing key');
    return {
      loadedAt: now,
      currentKid,
      published: rows.filter((r) => publishable(r, now)).map((r) => r.public_jwk as unknown as JWK),
      keys: rows.map(info),
    };
  }

  function refresh(): Promise<SigningKeySnapshot> {
    return (loading ??= load()
      .then((snapshot) => (cached = snapshot))
      .finally(() => {
        loading = undefined;
      }));
  }

  return {
    timing,

    /** The keys, re-read when the last read is `refreshMs` old; the last good on error. */
    async snapshot(): Promise<SigningKeySnapshot> {
      const now = deps.clock.now().getTime();
      if (cached && now - cached.loadedAt.getTime() < timing.refreshMs) return cached;
      try {
        return await refresh();
      } catch (err) {
        if (!cached) throw err;
        deps.onError?.(err);
        return cached;
      }
    },

    /**
     * Re-reads now, e.g. for a token naming a kid not seen yet. At most once a second
     * (wall time): a flood of made-up kids must not become a flood of queries.
     */
    async reload(): Promise<SigningKeySnapshot> {
      if (cached && performance.now() - forcedAt < 1_000) return cached;
      forcedAt = performance.now();
      try {
        return await refresh();
      } catch (err) {
        if (!cached) throw err;
        deps.onError?.(err);
        return cached;
      }
    },

    /** The private JWK of a key, unsealed (for the provider's keystore). */
    async privateJwk(kid: string): Promise<JWK> {
      const sealed = await deps.store.privateKey(kid);
      if (!sealed) throw new Error(`signing key ${kid} is gone`);
      return deps.sealer.openJson<JWK>(parseSealed(sealed), recordAad('oidc_keys', kid));
    },
  };
}

export type SigningKeys = ReturnType<typeof createSigningKeys>;

export type SigningRotation =
  | {
      promoted: true;
      retiredKid: string;
      currentKid: string;
      nextKid: string;
      /** The retired key stays published (tokens it signed verify) until then. */
      publishUntil: Date;
      /** The promoted key had been published for less than the lead time (--immediately). */
      early: boolean;
    }
  | {
      promoted: false;
      currentKid: string;
      nextKid: string;
      /** When it will be promoted; null until a running portal has published it. */
      promoteAt: Date | null;
    };

/**
 * `soglasie keys rotate` for the signing key, on the database directly (the portal's
 * embedded database with the portal stopped, or PostgreSQL while it runs). Asks for the
 * next key to be promoted; promotes it now when it has been published for the lead time
 * (or `immediately`), otherwise leaves that to the running portals at the due time.
 */
export async function rotateSigningKey(
  deps: SigningKeyDeps & { immediately?: boolean },
): Promise<SigningRotation> {
  const timing = timingOf(deps);
  const now = deps.clock.now();
  const rows = await ensureKeys(deps, now);
  const current = rows.find((r) => r.state === 'current')!;
  const next = rows.find((r) => r.state === 'next')!;
  await deps.store.requestPromotion(next.kid, now);
  const requested = { ...next, promote_requested_at: next.promote_requested_at ?? now };
  const due = promotionDueAt(requested, timing);
  const ready = due !== null && due.getTime() <= now.getTime();
  if (!ready && !deps.immediately) {
    return { promoted: false, currentKid: current.kid, nextKid: next.kid, promoteAt: due };
  }
  const result = await promote(deps, current, next, now);
  if (!result.promoted) {
    // A running portal promoted it at this very moment: report what is there now.
    const after = await deps.store.listKeys();
    const nowCurrent = after.find((r) => r.state === 'current')!;
    return {
      promoted: true,
      retiredKid: current.kid,
      currentKid: nowCurrent.kid,
      nextKid: after.find((r) => r.state === 'next')!.kid,
      publishUntil: new Date(now.getTime() + timing.retiredPublishMs),
      early: false,
    };
  }
  return {
    promoted: true,
    retiredKid: current.kid,
    currentKid: next.kid,
    nextKid: result.newNext!,
    publishUntil: result.publishUntil!,
    early: !ready,
  };
}

/** The keys as stored, for `soglasie keys status`. */
export async function listSigningKeys(store: OidcStore): Promise<SigningKeyInfo[]> {
  return (await store.listKeys()).sort((a, b) => ORDER[a.state] - ORDER[b.state]).map(info);
}
