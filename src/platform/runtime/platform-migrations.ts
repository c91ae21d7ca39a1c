import type { Kysely } from 'kysely';
import { createSessionTables } from '../http/session.store.js';
import { createAttemptTables } from '../limits/attempt-limiter.js';
import { createOneTimeCodeTables } from '../otp/one-time-codes.js';
import { createServiceKeyTables } from './service-keys.js';

/** Tables every service has; each service lists this first among its migrations. */
export const platformMigration = {
  async up(db: Kysely<never>) {
    await createServiceKeyTables(db);
    await createSessionTables(db);
    await createAttemptTables(db);
    await createOneTimeCodeTables(db);
  },
};
