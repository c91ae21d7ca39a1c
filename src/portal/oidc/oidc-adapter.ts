import type { Adapter, AdapterPayload } from 'oidc-provider';
import type { Clock } from '../../platform/clock.js';
import type { OidcStore } from './oidc.store.js';

/**
 * oidc-provider's persistence on our database, so that any number of portal instances
 * share sessions, codes and tokens. oidc-provider constructs one adapter per model name.
 */
export function createOidcAdapterClass(
  store: OidcStore,
  clock: Clock,
  hooks: { onGrantRevoked?: (grantId: string) => Promise<void> } = {},
) {
  return class DatabaseAdapter implements Adapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      await store.upsert({
        model: this.model,
        id,
        payload: payload as Record<string, unknown>,
        grant_id: payload.grantId ?? null,
        user_code: payload.userCode ?? null,
        uid: payload.uid ?? null,
        expires_at: expiresIn ? new Date(clock.now().getTime() + expiresIn * 1000) : null,
        consumed_at: null,
      });
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      return toPayload(await store.find(this.model, { id }, clock.now()));
    }

    async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return toPayload(await store.find(this.model, { userCode }, clock.now()));
    }

    async findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return toPayload(await store.find(this.model, { uid }, clock.now()));
    }

    async consume(id: string): Promise<void> {
      await store.consume(this.model, id, clock.now());
    }

    async destroy(id: string): Promise<void> {
      await store.destroy(this.model, id);
    }

    /**
     * oidc-provider revokes a grant when a code is replayed (RFC 6749 §4.1.2) or a token is
     * revoked. Access tokens are JWTs checked against the consent, so the consent must end
     * too, before this returns: otherwise an issued token would keep reading.
     */
    async revokeByGrantId(grantId: string): Promise<void> {
      await hooks.onGrantRevoked?.(grantId);
      await store.revokeByGrantId(grantId);
    }
  };
}

function toPayload(
  row: { payload: Record<string, unknown>; consumed_at: Date | null } | undefined,
): AdapterPayload | undefined {
  if (!row) return undefined;
  const payload = row.payload as AdapterPayload;
  // oidc-provider detects a reused code by `consumed` (RFC 6749 §4.1.2: revoke its tokens).
  return row.consumed_at
    ? { ...payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
    : payload;
}
