import { sql, type Kysely } from 'kysely';
import type { Migration } from '../platform/db/index.js';
import { addAuditMerkle, createAuditTables } from '../platform/audit/audit-log.js';
import { platformMigration } from '../platform/runtime/platform-migrations.js';
import { createWebhookTables } from '../platform/webhooks/index.js';
import { addConsentOrigin, createConsentTables } from './consents/consent.store.js';
import { createCitizenRecordTables } from './data-api/citizen-records.store.js';
import { addSigningKeyLifecycle, createOidcTables } from './oidc/oidc.store.js';
import { createRevocationTables } from './partners/certificate-revocation.store.js';
import {
  addPartnerRateLimit,
  addPortalConnect,
  createPartnerTables,
} from './partners/partner.store.js';
import { createDpopTables } from './partner-api/dpop.js';
import { createRateLimitCounterTables } from '../platform/limits/window-counters.js';
import { createIpBlockTables } from './security/ip-block.store.js';
import { createSecurityTables } from './security/anomaly.store.js';

/** The portal's schema, in order. Never edit a migration that has shipped; add one. */
export const portalMigrations: Record<string, Migration> = {
  '0001_platform': platformMigration,
  '0002_citizens': {
    async up(db: Kysely<never>) {
      // Identifiers people log in with are stored only as keyed hashes (for lookup);
      // the values themselves live in the sealed `personal` column.
      await sql`
        create table citizens (
          id text primary key,
          username text unique,
          phone_lookup text unique,
          email_lookup text unique,
          snils_lookup text unique,
          password_hash text not null,
          roles text[] not null default '{citizen}',
          phone_confirmed boolean not null default false,
          email_confirmed boolean not null default false,
          second_factor text not null default 'sms' check (second_factor in ('sms', 'totp')),
          totp_secret text,
          totp_device text,
          totp_enrolled_at timestamptz,
          totp_last_step bigint,
          blocked boolean not null default false,
          personal text not null,
          personal_updated_at timestamptz not null,
          created_at timestamptz not null
        )`.execute(db);
      await sql`
        create table organizations (
          id text primary key,
          inn_lookup text unique not null,
          details text not null,
          created_at timestamptz not null
        )`.execute(db);
      await sql`
        create table organization_members (
          organization_id text not null references organizations (id) on delete cascade,
          citizen_id text not null references citizens (id) on delete cascade,
          role text not null check (role in ('director', 'attorney')),
          primary key (organization_id, citizen_id)
        )`.execute(db);
    },
  },
  '0003_consent_and_data_access': {
    async up(db: Kysely<never>) {
      await createCitizenRecordTables(db);
      await createOidcTables(db);
      await createPartnerTables(db);
      await createConsentTables(db);
      await createAuditTables(db);
    },
  },
  '0004_dpop_proofs': {
    async up(db: Kysely<never>) {
      await createDpopTables(db);
    },
  },
  '0005_webhooks': {
    async up(db: Kysely<never>) {
      await createWebhookTables(db);
    },
  },
  '0006_portal_connections': {
    async up(db: Kysely<never>) {
      await addConsentOrigin(db);
      await addPortalConnect(db);
    },
  },
  '0007_rate_limits': {
    async up(db: Kysely<never>) {
      await addPartnerRateLimit(db);
      await createRateLimitCounterTables(db);
      await createIpBlockTables(db);
    },
  },
  '0008_audit_merkle': {
    async up(db: Kysely<never>) {
      // Every audit entry becomes a leaf of a Merkle tree; signed checkpoints (issue 5).
      await addAuditMerkle(db);
    },
  },
  // Anomaly alerts, login blocks, login history, shared read counters; TOTP device binding.
  '0009_security_alerts': {
    async up(db: Kysely<never>) {
      await createSecurityTables(db);
    },
  },
  '0010_keys_and_revocation': {
    async up(db: Kysely<never>) {
      // Signing keys: next → current → retired (docs/keys.md); revoked partner certificates.
      await addSigningKeyLifecycle(db);
      await createRevocationTables(db);
    },
  },
};
