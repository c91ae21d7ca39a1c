import type { Citizen, CitizenPersonalData } from '../citizens/citizen.js';

/**
 * The citizen's data as OpenID Connect claims (names follow OIDC Core §5.1 where one
 * exists, ESIA otherwise; docs/data-api.md). Which of them leave is decided by the
 * granted scopes, not here.
 */
export function accountClaims(p: CitizenPersonalData, citizen: Citizen): Record<string, unknown> {
  return {
    family_name: p.lastName,
    given_name: p.firstName,
    middle_name: p.middleName,
    name: [p.lastName, p.firstName, p.middleName].filter(Boolean).join(' '),
    birthdate: p.birthDate,
    gender: p.gender === 'M' ? 'male' : 'female',
    snils: p.snils,
    inn: p.inn,
    id_doc: {
      type: 'RF_PASSPORT',
      series: p.passport.series.replace(/\s/g, ''),
      number: p.passport.number,
      issue_date: p.passport.issueDate,
      issued_by: p.passport.issuedBy,
      division_code: p.passport.divisionCode,
    },
    addresses: [
      { type: 'PRG', address: p.addresses.registration },
      ...(p.addresses.residence ? [{ type: 'PLV', address: p.addresses.residence }] : []),
    ],
    phone_number: p.phone,
    phone_number_verified: citizen.phoneConfirmed,
    email: p.email,
    email_verified: p.email ? citizen.emailConfirmed : undefined,
  };
}
