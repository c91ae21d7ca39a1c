import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { calculateJwkThumbprint, EmbeddedJWK, jwtVerify } from 'jose';
import type { Clock } from '../../platform/clock.js';
import { AccessRefused, type AccessTokenClaims } from './access-checks.js';

/**
 * RFC 9449 at the resource server: a DPoP-bound token (cnf.jkt) is usable only with a
 * fresh proof signed by the bound key, for this method and URL, naming this token, once.
 */
export interface DpopProofTable {
  jti: string;
  expires_at: Date;
}

export interface DpopTables {
  dpop_proofs: DpopProofTable;
}

export async function createDpopTables(db: Kysely<never>): Promise<void> {
  await sql`create table dpop_proofs (jti text primary key, expires_at timestamptz not null)`.execute(
    db,
  );
  await sql`create index dpop_proofs_expiry_idx on dpop_proofs (expires_at)`.execute(db);
}

export async function deleteExpiredProofs(db: Kysely<DpopTables>, now: Date): Promise<number> {
  const result = await db
    .deleteFrom('dpop_proofs')
    .where('expires_at', '<=', now)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** Proofs older than this are refused; their jti need not be remembered longer. */
const PROOF_MAX_AGE_S = 120;

export function createDpopChecker(db: Kysely<DpopTables>, clock: Clock) {
  /** Remembers a proof id; false if it was seen before (shared by every instance). */
  async function firstUse(jti: string): Promise<boolean> {
    const expires = new Date(clock.now().getTime() + 2 * PROOF_MAX_AGE_S * 1000);
    const result = await db
      .insertInto('dpop_proofs')
      .values({ jti, expires_at: expires })
      .onConflict((oc) => oc.column('jti').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  return async function checkDpop(input: {
    scheme: 'Bearer' | 'DPoP';
    token: string;
    claims: AccessTokenClaims;
    proof: string | undefined;
    method: string;
    /** The request URL as the client sees it, without query and fragment (RFC 9449 §4.3). */
    url: string;
  }): Promise<void> {
    const jkt = input.claims.cnf?.jkt;
    if (!jkt) {
      if (input.scheme === 'DPoP') {
        throw new AccessRefused(
          'TOKEN_NOT_DPOP_BOUND',
          401,
          'This access token is not DPoP-bound; use the Bearer scheme.',
        );
      }
      return;
    }
    if (input.scheme !== 'DPoP') {
      throw new AccessRefused(
        'DPOP_REQUIRED',
        401,
        'This access token is DPoP-bound; use the DPoP scheme with a proof.',
      );
    }
    if (!input.proof)
      throw new AccessRefused('DPOP_PROOF_MISSING', 401, 'A DPoP proof is required.');
    let payload: Record<string, unknown>;
    let jwk: Record<string, unknown>;
    try {
      const verified = await jwtVerify(input.proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: ['ES256', 'EdDSA', 'PS256'],
        maxTokenAge: PROOF_MAX_AGE_S,
        clockTolerance: 5,
        currentDate: clock.now(),
        requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
      });
      payload = verified.payload;
      jwk = verified.protectedHeader.jwk as Record<string, unknown>;
    } catch {
      throw new AccessRefused('DPOP_PROOF_INVALID', 401, 'The DPoP proof is invalid.');
    }
    const ath = createHash('sha256').update(input.token).digest('base64url');
    if (payload.htm !== input.method || payload.htu !== input.url || payload.ath !== ath) {
      throw new AccessRefused(
        'DPOP_PROOF_INVALID',
        401,
        'The DPoP proof is for another request or token.',
      );
    }
    if ((await calculateJwkThumbprint(jwk as never)) !== jkt) {
      throw new AccessRefused(
        'DPOP_KEY_MISMATCH',
        401,
        'The DPoP proof is signed by another key than the token is bound to.',
      );
    }
    if (!(await firstUse(String(payload.jti)))) {
      throw new AccessRefused('DPOP_PROOF_REPLAYED', 401, 'This DPoP proof was used before.');
    }
  };
}
