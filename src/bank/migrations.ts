import { sql, type Kysely } from 'kysely';
import type { Migration } from '../platform/db/index.js';
import { platformMigration } from '../platform/runtime/platform-migrations.js';
import {
  createPortalLinkEventTables,
  createPortalLinkTables,
} from './portal-access/portal-link.store.js';
import { createPortalEventTables } from './portal-access/portal-events.store.js';
import { createDataRequestTables } from './data-rights/data-request.store.js';

/** The bank's schema, in order. Never edit a migration that has shipped; add one. */
export const bankMigrations: Record<string, Migration> = {
  '0001_platform': platformMigration,
  '0002_customers': {
    async up(db: Kysely<never>) {
      await sql`
        create table customers (
          id text primary key,
          username text unique not null,
          password_hash text not null,
          roles text[] not null default '{customer}',
          blocked boolean not null default false,
          personal text not null,
          personal_updated_at timestamptz not null,
          created_at timestamptz not null
        )`.execute(db);
    },
  },
  '0003_portal_links': {
    async up(db: Kysely<never>) {
      await createPortalLinkTables(db);
    },
  },
  '0004_portal_events': {
    async up(db: Kysely<never>) {
      await createPortalEventTables(db);
    },
  },
  '0005_data_requests': {
    async up(db: Kysely<never>) {
      await createDataRequestTables(db);
    },
  },
  '0006_portal_link_events': {
    async up(db: Kysely<never>) {
      await createPortalLinkEventTables(db);
    },
  },
  // The citizen paused the consent at the portal: the bank keeps the data, cannot read more.
  '0008_portal_link_pause': {
    async up(db: Kysely<never>) {
      await sql`alter table portal_links add column paused_at timestamptz`.execute(db);
    },
  },
  // J1: the number a customer gives the portal so the bank can find them.
  '0007_client_numbers': {
    async up(db: Kysely<never>) {
      await sql`create sequence customer_numbers start 100001`.execute(db);
      await sql`
        alter table customers
          add column client_number text unique not null
            default nextval('customer_numbers')::text`.execute(db);
    },
  },
};
