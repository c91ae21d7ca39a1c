/** The citizen's own data as the portal holds it; sealed at rest as one record. */
export interface CitizenPersonalData {
  lastName: string;
  firstName: string;
  middleName?: string | undefined;
  /** YYYY-MM-DD */
  birthDate: string;
  birthPlace: string;
  gender: 'M' | 'F';
  snils: string;
  inn: string;
  phone: string;
  email?: string | undefined;
  passport: {
    series: string;
    number: string;
    /** YYYY-MM-DD */
    issueDate: string;
    issuedBy: string;
    divisionCode: string;
  };
  addresses: {
    /** Адрес регистрации (ESIA `PRG`). */
    registration: string;
    /** Адрес проживания (ESIA `PLV`). */
    residence?: string | undefined;
  };
}

export type CitizenRole = 'citizen' | 'security' | 'admin';

export interface Citizen {
  id: string;
  username: string | null;
  roles: CitizenRole[];
  phoneConfirmed: boolean;
  emailConfirmed: boolean;
  secondFactor: 'sms' | 'totp';
  totpDevice: string | null;
  totpEnrolledAt: Date | null;
  /** SHA-256 of the device cookie of the browser the app was enrolled on (login binding). */
  totpDeviceHash?: string | null | undefined;
  blocked: boolean;
  personalUpdatedAt: Date;
  createdAt: Date;
}

export function fullName(p: Pick<CitizenPersonalData, 'lastName' | 'firstName' | 'middleName'>) {
  return [p.lastName, p.firstName, p.middleName].filter(Boolean).join(' ');
}
