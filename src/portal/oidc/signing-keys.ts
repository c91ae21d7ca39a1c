import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { Clock } from '../../platform/clock.js';
import {
  parseSealed,
  recordAad,
  serializeSealed,
  type Sealer,
} from '../../platform/crypto/index.js';
import type { OidcStore } from './oidc.store.js';

/**
 * The portal's token signing keys: ES256, private halves sealed in the database. There is
 * always a `current` key that signs and a `next` key already published in the JWKS, so a
 * rotation never surprises a relying party that caches the JWKS (issue: keys rotate).
 */
export const SIGNING_ALG = 'ES256';

async function newKey(store: OidcStore, sealer: Sealer, state: 'current' | 'next', now: Date) {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' };
  await store.insertKey({
    kid,
    alg: SIGNING_ALG,
    private_jwk: serializeSealed(await sealer.seal(privateJwk, recordAad('oidc_keys', kid))),
    public_jwk: { ...publicJwk, kid, alg: SIGNING_ALG, use: 'sig' },
    state,
    created_at: now,
  });
}

/** Makes sure a current and a next key exist; returns the private JWKS, signing key first. */
export async function loadSigningKeys(
  store: OidcStore,
  sealer: Sealer,
  clock: Clock,
): Promise<{ keys: JWK[] }> {
  let rows = await store.listKeys();
  for (const state of ['current', 'next'] as const) {
    if (!rows.some((r) => r.state === state)) {
      try {
        await newKey(store, sealer, state, clock.now());
      } catch (err) {
        // Another instance created it at the same moment; use theirs.
        if (!(await store.listKeys()).some((r) => r.state === state)) throw err;
      }
    }
  }
  rows = await store.listKeys();
  const order = { current: 0, next: 1, retired: 2 } as const;
  rows.sort((a, b) => order[a.state] - order[b.state]);
  const keys = await Promise.all(
    rows.map((r) =>
      sealer.openJson<JWK>(parseSealed(r.private_jwk), recordAad('oidc_keys', r.kid)),
    ),
  );
  return { keys };
}
