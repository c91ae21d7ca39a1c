import { describe, expect, it } from 'vitest';
import type { ConsentRequest } from '../consents/consent.js';
import { chosenScopes } from './interaction.routes.js';

const REQUEST: ConsentRequest = {
  type: 'CREDIT',
  purposes: ['Рассмотрение заявки на кредит'],
  actions: ['READ'],
  scopes: ['fullname', 'snils', 'contacts', 'addresses'],
  optionalScopes: ['contacts', 'addresses'],
  durationDays: 30,
};

describe('chosenScopes', () => {
  it('keeps every requested scope when the citizen leaves all of them ticked', () => {
    const ticked = new Set(['fullname', 'snils', 'contacts', 'addresses']);
    expect(chosenScopes(REQUEST, ticked)).toEqual({
      scopes: ['fullname', 'snils', 'contacts', 'addresses'],
    });
  });

  it('drops the optional scopes the citizen unticked', () => {
    expect(chosenScopes(REQUEST, new Set(['fullname', 'snils', 'addresses']))).toEqual({
      scopes: ['fullname', 'snils', 'addresses'],
    });
    expect(chosenScopes(REQUEST, new Set(['fullname', 'snils']))).toEqual({
      scopes: ['fullname', 'snils'],
    });
  });

  it('refuses to drop a required scope and names every missing one', () => {
    expect(chosenScopes(REQUEST, new Set(['fullname', 'contacts']))).toEqual({
      missing: ['snils'],
    });
    expect(chosenScopes(REQUEST, new Set())).toEqual({ missing: ['fullname', 'snils'] });
  });

  it('never adds a ticked scope that the partner did not request', () => {
    const result = chosenScopes(REQUEST, new Set(['fullname', 'snils', 'id_doc', 'inn']));
    expect(result).toEqual({ scopes: ['fullname', 'snils'] });
  });

  it('in an identification request fullname stays required and the rest follows the ticks', () => {
    const identification: ConsentRequest = {
      ...REQUEST,
      type: 'IDENTIFICATION',
      scopes: ['fullname', 'birthdate'],
      optionalScopes: ['birthdate'],
    };
    expect(chosenScopes(identification, new Set(['fullname']))).toEqual({ scopes: ['fullname'] });
    expect(chosenScopes(identification, new Set(['birthdate']))).toEqual({ missing: ['fullname'] });
  });
});
