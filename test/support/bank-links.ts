import type { Kysely } from 'kysely';
import type { BankDB } from '../../src/bank/db.js';
import type { PortalLinkTables } from '../../src/bank/portal-access/portal-link.store.js';
import type { Clock } from '../../src/platform/clock.js';
import {
  createSubjectKey,
  sealWithKey,
  serializeSealed,
  wrapSubjectKey,
  type KeyEncryptionKeyring,
} from '../../src/platform/crypto/index.js';
import type { ServiceRuntime } from '../../src/platform/runtime/service-runtime.js';

/**
 * Puts a linked customer in the bank's vault as `complete()` would (sealed under a data key
 * of their own), without a portal: for tests that start from «Доступ предоставлен».
 */
export async function insertLink(
  runtime: { db: ServiceRuntime<BankDB>['db']; keyring: KeyEncryptionKeyring },
  clock: Clock,
  customerId: string,
  consentId: string,
  opts: { accessExpiresAt?: Date; data?: Record<string, unknown> } = {},
): Promise<void> {
  const now = clock.now();
  const key = createSubjectKey();
  const aad = (what: string) => `portal_links/${customerId}/${what}`;
  const tokens = {
    access_token: 'at-1',
    refresh_token: 'rt-1',
    access_expires_at: (opts.accessExpiresAt ?? new Date(now.getTime() + 600_000)).getTime(),
  };
  await (runtime.db as unknown as Kysely<PortalLinkTables>)
    .insertInto('portal_links')
    .values({
      customer_id: customerId,
      consent_id: consentId,
      portal_sub: 'sub-1',
      scopes: ['fullname', 'snils', 'orders'],
      consent_expires_at: new Date(now.getTime() + 365 * 86_400_000),
      linked_at: now,
      subject_key: JSON.stringify(await wrapSubjectKey(runtime.keyring, key)),
      tokens: serializeSealed(sealWithKey(key, tokens, aad('tokens'))),
      data: serializeSealed(
        sealWithKey(key, opts.data ?? { person: { lastName: 'Иванов' } }, aad('data')),
      ),
      data_fetched_at: now,
    })
    .execute();
  key.fill(0);
}
