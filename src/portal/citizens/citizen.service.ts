import type { Clock } from '../../platform/clock.js';
import {
  hashPassword,
  keyedHash,
  parseSealed,
  recordAad,
  serializeSealed,
  verifyPassword,
  type Sealer,
} from '../../platform/crypto/index.js';
import { BadRequestError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import type { LoginAccount } from '../../platform/login/login-routes.js';
import { createTotpSecret, verifyTotp } from '../../platform/otp/totp.js';
import type { Citizen, CitizenPersonalData, CitizenRole } from './citizen.js';
import type { CitizenStore, Lookups } from './citizen.store.js';
import { normalizeEmail, normalizePhone, parseLoginIdentifier } from './identifiers.js';

export interface CitizenServiceDeps {
  store: CitizenStore;
  sealer: Sealer;
  lookupKey: Buffer;
  clock: Clock;
  ids: IdGenerator;
}

export interface NewCitizen {
  personal: CitizenPersonalData;
  password: string;
  roles?: CitizenRole[];
  username?: string;
  phoneConfirmed: boolean;
  emailConfirmed: boolean;
}

/** Citizens' accounts: identity lookups, sealed personal data, and the second factor. */
export function createCitizenService(deps: CitizenServiceDeps) {
  const { store, sealer, clock, ids } = deps;
  // A separate domain per field, so equal strings in different fields do not correlate.
  const lookup = (field: 'phone' | 'email' | 'snils', value: string) =>
    keyedHash(deps.lookupKey, `${field}:${value}`);
  const personalAad = (id: string) => recordAad('citizens', id, 'personal');
  const totpAad = (id: string) => recordAad('citizens', id, 'totp_secret');

  function lookupsFor(identifier: string): Lookups | undefined {
    const parsed = parseLoginIdentifier(identifier);
    if (!parsed) return undefined;
    switch (parsed.kind) {
      case 'email':
        return { email: lookup('email', parsed.value) };
      case 'username':
        return { username: parsed.value };
      case 'phone-or-snils': {
        const phone = parsed.phone ? lookup('phone', parsed.phone) : undefined;
        const snils = parsed.snils ? lookup('snils', parsed.snils) : undefined;
        return parsed.phoneFirst ? { phone, snils } : { snils, phone };
      }
    }
  }

  async function openPersonal(id: string, sealed: string): Promise<CitizenPersonalData> {
    return sealer.openJson<CitizenPersonalData>(parseSealed(sealed), personalAad(id));
  }

  return {
    async create(input: NewCitizen): Promise<string> {
      const id = ids.uuid();
      const now = clock.now();
      const phone = normalizePhone(input.personal.phone);
      if (!phone) throw new BadRequestError('PHONE_INVALID', 'The phone number is invalid.');
      const email = input.personal.email ? normalizeEmail(input.personal.email) : undefined;
      const personal: CitizenPersonalData = { ...input.personal, phone, email };
      await store.insert({
        id,
        username: input.username?.toLowerCase() ?? null,
        phone_lookup: lookup('phone', phone),
        email_lookup: email ? lookup('email', email) : null,
        snils_lookup: lookup('snils', personal.snils.replace(/\D/g, '')),
        password_hash: await hashPassword(input.password),
        roles: input.roles ?? ['citizen'],
        phone_confirmed: input.phoneConfirmed,
        email_confirmed: input.emailConfirmed,
        second_factor: 'sms',
        totp_secret: null,
        totp_device: null,
        totp_enrolled_at: null,
        blocked: false,
        personal: serializeSealed(await sealer.seal(personal, personalAad(id))),
        personal_updated_at: now,
        created_at: now,
      });
      return id;
    },

    async findIdByIdentifier(identifier: string): Promise<string | undefined> {
      const lookups = lookupsFor(identifier);
      return lookups ? store.findIdBy(lookups) : undefined;
    },

    /** The account as the login flow sees it; decrypts only the phone it needs. */
    async loginAccount(id: string): Promise<LoginAccount | undefined> {
      const row = await store.getCredentials(id);
      if (!row) return undefined;
      const personal = await openPersonal(row.id, row.personal);
      return {
        id: row.id,
        passwordHash: row.password_hash,
        secondFactor: row.second_factor,
        phone: personal.phone,
        totpSecret: row.totp_secret
          ? await sealer.openText(parseSealed(row.totp_secret), totpAad(row.id))
          : undefined,
        totpDeviceHash: row.totp_device_hash,
        blocked: row.blocked,
      };
    },

    useTotpStep: (id: string, step: number) => store.useTotpStep(id, step),

    async get(id: string): Promise<Citizen | undefined> {
      return store.get(id);
    },

    /** The citizen's own data, decrypted for the citizen alone. */
    async personalData(
      id: string,
    ): Promise<{ citizen: Citizen; personal: CitizenPersonalData } | undefined> {
      const row = await store.get(id);
      if (!row) return undefined;
      const { sealedPersonal, ...citizen } = row;
      return { citizen, personal: await openPersonal(id, sealedPersonal) };
    },

    async organizations(id: string) {
      const rows = await store.organizationsOf(id);
      return Promise.all(
        rows.map(async (r) => ({
          id: r.id,
          role: r.role,
          details: await sealer.openJson<OrganizationDetails>(
            parseSealed(r.details),
            recordAad('organizations', r.id, 'details'),
          ),
        })),
      );
    },

    async createOrganization(details: OrganizationDetails, director: string): Promise<string> {
      const id = ids.uuid();
      await store.insertOrganization({
        id,
        inn_lookup: keyedHash(deps.lookupKey, `org_inn:${details.inn}`),
        details: serializeSealed(
          await sealer.seal(details, recordAad('organizations', id, 'details')),
        ),
        created_at: clock.now(),
      });
      await store.addMember({ organization_id: id, citizen_id: director, role: 'director' });
      return id;
    },

    setEmailConfirmed: (id: string) => store.setEmailConfirmed(id),

    newTotpSecret: createTotpSecret,

    /**
     * Enrols an authenticator app once the citizen proves it shows the right code, bound
     * to the browser it is enrolled from (`deviceHash`: its device cookie's hash).
     */
    async enrollTotp(
      id: string,
      secret: string,
      code: string,
      device: string,
      deviceHash: string,
    ): Promise<'enrolled' | 'wrong-code'> {
      const now = clock.now();
      const step = verifyTotp(secret, code, now);
      if (step === null) return 'wrong-code';
      await store.setTotp(id, {
        sealedSecret: serializeSealed(await sealer.seal(secret, totpAad(id))),
        device,
        deviceHash,
        enrolledAt: now,
      });
      // The code used to enrol must not also log in.
      await store.useTotpStep(id, step);
      return 'enrolled';
    },

    /**
     * A TOTP login from another device enrolled the app anew (after an SMS code and the
     * new app's first code, checked by the login flow): the new secret, bound to that
     * device, replaces the old one; `step` is the code that logs in, used once.
     */
    async reenrolTotp(
      id: string,
      enrolment: { secret: string; deviceHash: string; step: number },
    ): Promise<void> {
      await store.setTotp(id, {
        sealedSecret: serializeSealed(await sealer.seal(enrolment.secret, totpAad(id))),
        device: 'Приложение-аутентификатор',
        deviceHash: enrolment.deviceHash,
        enrolledAt: clock.now(),
      });
      await store.useTotpStep(id, enrolment.step);
    },

    /** Back to SMS codes; the password is asked again so a left-open session cannot do it. */
    async removeTotp(id: string, password: string): Promise<'removed' | 'wrong-password'> {
      const row = await store.getCredentials(id);
      if (!row || !(await verifyPassword(row.password_hash, password))) return 'wrong-password';
      await store.setTotp(id, null);
      return 'removed';
    },
  };
}

export type CitizenService = ReturnType<typeof createCitizenService>;

export interface OrganizationDetails {
  fullName: string;
  shortName: string;
  inn: string;
  ogrn: string;
  kpp: string;
  address: string;
}
