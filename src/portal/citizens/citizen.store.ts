import type { Kysely } from 'kysely';
import type { Citizen, CitizenRole } from './citizen.js';

export interface CitizenTable {
  id: string;
  username: string | null;
  phone_lookup: string | null;
  email_lookup: string | null;
  snils_lookup: string | null;
  password_hash: string;
  roles: CitizenRole[];
  phone_confirmed: boolean;
  email_confirmed: boolean;
  second_factor: 'sms' | 'totp';
  totp_secret: string | null;
  totp_device: string | null;
  totp_enrolled_at: Date | null;
  totp_last_step: string | number | null;
  /** The device the app was enrolled on (migration 0009; see platform/login/device.ts). */
  totp_device_hash: string | null;
  blocked: boolean;
  personal: string;
  personal_updated_at: Date;
  created_at: Date;
}

export interface OrganizationTable {
  id: string;
  inn_lookup: string;
  details: string;
  created_at: Date;
}

export interface OrganizationMemberTable {
  organization_id: string;
  citizen_id: string;
  role: 'director' | 'attorney';
}

export interface CitizenTables {
  citizens: CitizenTable;
  organizations: OrganizationTable;
  organization_members: OrganizationMemberTable;
}

export type NewCitizenRow = Omit<CitizenTable, 'totp_last_step' | 'totp_device_hash'>;

export interface Lookups {
  username?: string | undefined;
  phone?: string | undefined;
  email?: string | undefined;
  snils?: string | undefined;
}

function toCitizen(row: CitizenTable): Citizen {
  return {
    id: row.id,
    username: row.username,
    roles: row.roles,
    phoneConfirmed: row.phone_confirmed,
    emailConfirmed: row.email_confirmed,
    secondFactor: row.second_factor,
    totpDevice: row.totp_device,
    totpEnrolledAt: row.totp_enrolled_at ? new Date(row.totp_enrolled_at) : null,
    totpDeviceHash: row.totp_device_hash,
    blocked: row.blocked,
    personalUpdatedAt: new Date(row.personal_updated_at),
    createdAt: new Date(row.created_at),
  };
}

export function createCitizenStore(db: Kysely<CitizenTables>) {
  return {
    async insert(row: NewCitizenRow): Promise<void> {
      await db.insertInto('citizens').values(row).execute();
    },

    /** Finds a citizen by any of the given keyed-hash lookups, in the order given. */
    async findIdBy(lookups: Lookups): Promise<string | undefined> {
      const columns = {
        username: 'username',
        phone: 'phone_lookup',
        email: 'email_lookup',
        snils: 'snils_lookup',
      } as const;
      for (const [kind, value] of Object.entries(lookups) as [
        keyof Lookups,
        string | undefined,
      ][]) {
        if (!value) continue;
        const row = await db
          .selectFrom('citizens')
          .select('id')
          .where(columns[kind], '=', value)
          .executeTakeFirst();
        if (row) return row.id;
      }
      return undefined;
    },

    async get(id: string): Promise<(Citizen & { sealedPersonal: string }) | undefined> {
      const row = await db
        .selectFrom('citizens')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return row ? { ...toCitizen(row), sealedPersonal: row.personal } : undefined;
    },

    async getCredentials(id: string) {
      return db
        .selectFrom('citizens')
        .select([
          'id',
          'password_hash',
          'second_factor',
          'totp_secret',
          'totp_device_hash',
          'blocked',
          'personal',
        ])
        .where('id', '=', id)
        .executeTakeFirst();
    },

    async setTotp(
      id: string,
      totp: { sealedSecret: string; device: string; deviceHash: string; enrolledAt: Date } | null,
    ): Promise<void> {
      await db
        .updateTable('citizens')
        .set(
          totp
            ? {
                second_factor: 'totp',
                totp_secret: totp.sealedSecret,
                totp_device: totp.device,
                totp_device_hash: totp.deviceHash,
                totp_enrolled_at: totp.enrolledAt,
                totp_last_step: null,
              }
            : {
                second_factor: 'sms',
                totp_secret: null,
                totp_device: null,
                totp_device_hash: null,
                totp_enrolled_at: null,
                totp_last_step: null,
              },
        )
        .where('id', '=', id)
        .execute();
    },

    /** Marks a TOTP time step used; refuses a step not newer than the last one. */
    async useTotpStep(id: string, step: number): Promise<boolean> {
      const result = await db
        .updateTable('citizens')
        .set({ totp_last_step: step })
        .where('id', '=', id)
        .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async setEmailConfirmed(id: string): Promise<void> {
      await db
        .updateTable('citizens')
        .set({ email_confirmed: true })
        .where('id', '=', id)
        .execute();
    },

    async insertOrganization(row: OrganizationTable): Promise<void> {
      await db.insertInto('organizations').values(row).execute();
    },

    async addMember(row: OrganizationMemberTable): Promise<void> {
      await db.insertInto('organization_members').values(row).execute();
    },

    async organizationsOf(citizenId: string) {
      return db
        .selectFrom('organization_members as m')
        .innerJoin('organizations as o', 'o.id', 'm.organization_id')
        .select(['o.id', 'o.details', 'm.role'])
        .where('m.citizen_id', '=', citizenId)
        .execute();
    },
  };
}

export type CitizenStore = ReturnType<typeof createCitizenStore>;
