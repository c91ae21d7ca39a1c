import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { Clock } from '../../platform/clock.js';
import {
  createSubjectKey,
  openJsonWithKey,
  parseKeySealed,
  serializeSealed,
  sealWithKey,
  unwrapSubjectKey,
  wrapSubjectKey,
  type KeyEncryptionKeyring,
  type WrappedKey,
} from '../../platform/crypto/index.js';
import { AppError } from '../../platform/http/errors.js';
import type { IdGenerator } from '../../platform/ids.js';
import {
  ConsentEndedError,
  type ConsentEndCause,
  type InFlightOperation,
  type InFlightRegistry,
} from './in-flight.js';
import { PortalUnavailable, type PortalClient } from './portal-client.js';
import { sendDeletionReceipt } from './portal-events.js';
import type {
  PortalLinkEventTable,
  PortalLinkStore,
  PortalLinkTable,
} from './portal-link.store.js';

/** What the bank asks for when a customer links the portal (J2). */
export const LINK_SCOPES = [
  'fullname',
  'birthdate',
  'gender',
  'snils',
  'inn',
  'id_doc',
  'addresses',
  'contacts',
  'orders',
];
export const LINK_REQUEST = {
  type: 'soglasie_consent',
  sysname: 'REG_QUESTIONNAIRE',
  purposes: ['Проверка и обновление анкеты клиента', 'Предзаполнение заявок на продукты банка'],
  actions: ['READ_AND_STORE'],
  scopes: LINK_SCOPES,
  optional_scopes: ['gender', 'addresses', 'contacts', 'orders'],
  duration_days: 365,
};

/** Data API resources the bank fetches at link time, with the scope each needs. */
const FETCH: { resource: string; path: string; scope: string }[] = [
  { resource: 'person', path: '', scope: 'openid' },
  { resource: 'docs', path: '/docs', scope: 'id_doc' },
  { resource: 'addrs', path: '/addrs', scope: 'addresses' },
  { resource: 'ctts', path: '/ctts', scope: 'contacts' },
];

/** A link attempt waiting for the portal's redirect back; kept in the bank session. */
export interface PendingLink {
  state: string;
  codeVerifier: string;
  startedAt: number;
}

interface Tokens {
  access_token: string;
  refresh_token?: string | undefined;
  access_expires_at: number;
}

export interface LinkView {
  consentId: string;
  scopes: string[];
  consentExpiresAt: Date;
  /** The citizen paused the consent at the portal: the data stays, reads are refused. */
  pausedAt: Date | null;
  linkedAt: Date;
  data: Record<string, unknown>;
  dataFetchedAt: Date;
}

/** What the bank's pages poll to follow the link (J5): no personal data. */
export interface LinkState {
  linked: boolean;
  /** The last characters of the consent id, as a customer could quote it to support. */
  consent: string | null;
  /** What the page says, e.g. «Доступ предоставлен до 01.12.2027». */
  status: string;
  /** Changes whenever the link does (a new link, or none any more). */
  state: string;
}

/** The key a page renders and the live script compares with `LinkState.state`. */
export function liveStateKey(
  link: { consentId: string; linkedAt: Date; pausedAt?: Date | null } | undefined,
): string {
  if (!link) return 'not-linked';
  return `linked:${link.consentId.slice(-6)}:${link.linkedAt.getTime()}${link.pausedAt ? ':paused' : ''}`;
}

const ruDate = (d: Date) =>
  d.toLocaleDateString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
  });

/** What the customer is told when an operation is cancelled because its consent ended. */
export const CANCELLED_MESSAGES: Record<ConsentEndCause, string> = {
  revoked: 'Запрос отменён: доступ отозван на Госуслугах. Банк удалил полученные с портала данные.',
  expired:
    'Запрос отменён: срок согласия на Госуслугах истёк. Банк удалил полученные с портала данные.',
  inactive:
    'Запрос отменён: согласие на Госуслугах больше не действует. Банк удалил полученные с портала данные.',
  unlinked: 'Запрос отменён: доступ к Госуслугам отключён. Полученные с портала данные удалены.',
};

/** The message (SMS) sent when the portal ends a consent; it carries no personal data. */
export const ENDED_NOTIFICATIONS: Partial<
  Record<ConsentEndCause, { subject: string; text: string }>
> = {
  revoked: {
    subject: 'Доступ к Госуслугам отключён',
    text: 'Банк: доступ к данным Госуслуг отключён. Банк удалил полученные с портала данные.',
  },
  expired: {
    subject: 'Доступ к Госуслугам отключён',
    text: 'Банк: срок согласия на Госуслугах истёк, доступ к данным отключён. Банк удалил полученные с портала данные.',
  },
};

export class PortalError extends AppError {
  constructor(code: string, message: string, userMessage: string, status = 502) {
    super(code, status, message, userMessage);
  }
}

const unavailable = () =>
  new PortalError(
    'PORTAL_UNAVAILABLE',
    'The portal could not be reached.',
    'Госуслуги сейчас недоступны (технический сбой). Повторите попытку через несколько минут.',
  );

export function createPortalLinkService(deps: {
  portal: PortalClient | undefined;
  store: PortalLinkStore;
  keyring: KeyEncryptionKeyring;
  clock: Clock;
  ids: IdGenerator;
  /** Operations under each consent, aborted when it ends. */
  inFlight: InFlightRegistry;
  /** Tells the customer (SMS through the bank's notifier); failures are only logged. */
  notify: (customerId: string, message: { subject: string; text: string }) => Promise<void>;
  logger: Pick<Logger, 'warn'>;
}) {
  const { store, keyring, clock, inFlight } = deps;
  const requirePortal = () => {
    if (!deps.portal) {
      throw new PortalError(
        'PORTAL_NOT_CONFIGURED',
        'The bank is not registered with the portal (no partner files).',
        'Связь с Госуслугами не настроена. Обратитесь в поддержку банка.',
        503,
      );
    }
    return deps.portal;
  };
  const aad = (customerId: string, what: string) => `portal_links/${customerId}/${what}`;

  async function subjectKey(row: PortalLinkTable) {
    return unwrapSubjectKey(keyring, JSON.parse(row.subject_key) as WrappedKey);
  }

  async function fetchResource(token: string, sub: string, path: string, op: InFlightOperation) {
    const portal = requirePortal();
    const res = await op.guard(
      portal.get(
        `${portal.material.dataApi}/prns/${encodeURIComponent(sub)}${path}`,
        {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
        },
        op.signal,
      ),
    );
    if (res.status !== 200) {
      let code = 'UNKNOWN';
      try {
        code = String((JSON.parse(res.body) as { code?: string }).code ?? code);
      } catch {
        // not JSON: keep UNKNOWN
      }
      return { ok: false as const, status: res.status, code };
    }
    return { ok: true as const, json: JSON.parse(res.body) as unknown };
  }

  /**
   * The consent ended (the portal said so, or the customer unlinked): operations under it
   * are aborted, the vault row goes with its data key (crypto-shredding) and the event is
   * recorded for the customer; the portal gets a signed receipt and, when the portal ended
   * it, the customer a message. Returns whether there was anything to delete.
   */
  async function endConsent(consentId: string, cause: ConsentEndCause): Promise<boolean> {
    inFlight.abort(consentId, cause);
    const now = clock.now();
    const gone = await store.endByConsent(consentId, {
      id: deps.ids.uuid(),
      kind: cause,
      at: now,
      // The customer who unlinked, or who just saw the refusal, already knows.
      seen_at: cause === 'revoked' || cause === 'expired' ? null : now,
    });
    if (!gone) return false;
    // The proof goes back in the background: the caller's answer does not wait for it.
    void sendDeletionReceipt({ portal: deps.portal, clock }, consentId, gone.scopes).catch(
      (err: unknown) =>
        deps.logger.warn({ err: (err as Error).message }, 'deletion receipt not sent'),
    );
    const message = ENDED_NOTIFICATIONS[cause];
    if (message) {
      await deps
        .notify(gone.customer_id, message)
        .catch((err: unknown) =>
          deps.logger.warn({ err: (err as Error).message }, 'customer not told of the revocation'),
        );
    }
    return true;
  }

  /**
   * Fetches the data a consent grants and seals it in the vault under a fresh per-customer
   * key (J2 after the redirect, J1 after the consent grant). The consent may end while the
   * bank is still fetching: then nothing is stored, and a row stored just before the end
   * landed is removed. With `samePerson`, nothing is stored unless the data is of the
   * customer it would be filed under ('mismatch').
   */
  async function keep(
    customerId: string,
    input: {
      consentId: string;
      sub: string;
      tokens: {
        access_token: string;
        refresh_token?: string | undefined;
        expires_in?: number | undefined;
        scope?: string | undefined;
      };
      expiresAt: string | undefined;
      samePerson?: (person: Record<string, unknown> | undefined) => boolean;
    },
  ): Promise<'kept' | 'mismatch'> {
    const { tokens, sub } = input;
    const grantedScopes = new Set(
      String(tokens.scope ?? '')
        .split(' ')
        .filter(Boolean),
    );
    const consentId = input.consentId;
    // The citizen may revoke at the portal while the bank is still fetching: then
    // nothing is stored, and a row stored just before the revocation landed is removed.
    const op = inFlight.begin(consentId);
    const key = createSubjectKey();
    try {
      const data: Record<string, unknown> = {};
      for (const item of FETCH) {
        if (item.scope !== 'openid' && !grantedScopes.has(item.scope)) continue;
        const res = await fetchResource(tokens.access_token, sub, item.path, op);
        if (res.ok) data[item.resource] = res.json;
      }
      if (input.samePerson && !input.samePerson(data.person as Record<string, unknown> | undefined))
        return 'mismatch';
      const now = clock.now();
      const stored: Tokens = {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_expires_at: now.getTime() + (tokens.expires_in ?? 600) * 1000,
      };
      const subjectKey = JSON.stringify(await wrapSubjectKey(keyring, key));
      op.throwIfEnded();
      await store.upsert({
        customer_id: customerId,
        consent_id: consentId,
        portal_sub: sub,
        scopes: [...grantedScopes],
        consent_expires_at: input.expiresAt
          ? new Date(input.expiresAt)
          : new Date(now.getTime() + 365 * 86_400_000),
        linked_at: now,
        subject_key: subjectKey,
        tokens: serializeSealed(sealWithKey(key, stored, aad(customerId, 'tokens'))),
        data: serializeSealed(sealWithKey(key, data, aad(customerId, 'data'))),
        data_fetched_at: now,
        paused_at: null,
      });
      if (op.signal.aborted) {
        await endConsent(consentId, (op.signal.reason as ConsentEndedError).endCause);
        op.throwIfEnded();
      }
    } catch (err) {
      if (err instanceof ConsentEndedError) {
        throw new PortalError(
          'PORTAL_CONSENT_ENDED',
          'The consent ended while the bank was fetching the data.',
          'Доступ отозван на Госуслугах, пока банк получал данные. Банк не сохранил полученные с портала данные.',
          409,
        );
      }
      throw err;
    } finally {
      key.fill(0);
      op.end();
    }
    return 'kept';
  }

  return {
    configured: () => deps.portal !== undefined,

    endConsent,

    /** The link's state for the live status (polled): reads no sealed column. */
    async state(customerId: string): Promise<LinkState> {
      const row = await store.state(customerId);
      if (!row) {
        return {
          linked: false,
          consent: null,
          status: 'Профиль не связан с Госуслугами',
          state: liveStateKey(undefined),
        };
      }
      return {
        linked: true,
        consent: `…${row.consent_id.slice(-6)}`,
        status: row.paused_at
          ? `Доступ приостановлен на Госуслугах с ${ruDate(new Date(row.paused_at))}`
          : `Доступ предоставлен до ${ruDate(new Date(row.consent_expires_at))}`,
        state: liveStateKey({
          consentId: row.consent_id,
          linkedAt: new Date(row.linked_at),
          pausedAt: row.paused_at ? new Date(row.paused_at) : null,
        }),
      };
    },

    /** The portal paused or resumed a consent (its webhook): the page says so, data stays. */
    setPaused: (consentId: string, paused: boolean) =>
      store.setPaused(consentId, paused ? clock.now() : null),

    /** What happened to the customer's links, newest first. */
    history: (customerId: string, limit?: number): Promise<PortalLinkEventTable[]> =>
      store.events(customerId, limit),

    /** Events the customer has not been shown yet; shown once, on their next page view. */
    takeNotices: (customerId: string): Promise<PortalLinkEventTable[]> =>
      store.takeUnseen(customerId, clock.now()),

    /** Pushes the authorization request (PAR) and returns where to send the browser. */
    async start(): Promise<{ url: URL; pending: PendingLink }> {
      const portal = requirePortal();
      try {
        const config = await portal.config();
        const codeVerifier = client.randomPKCECodeVerifier();
        const state = client.randomState();
        const url = await client.buildAuthorizationUrlWithPAR(config, {
          redirect_uri: portal.material.redirectUri,
          scope: ['openid', ...LINK_SCOPES].join(' '),
          code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
          code_challenge_method: 'S256',
          state,
          authorization_details: JSON.stringify([LINK_REQUEST]),
        });
        return { url, pending: { state, codeVerifier, startedAt: clock.now().getTime() } };
      } catch (err) {
        if (
          err instanceof PortalUnavailable ||
          (err as { code?: string }).code?.startsWith('OAUTH_')
        )
          throw unavailable();
        throw err;
      }
    },

    /**
     * The portal's redirect back: checks state, iss and the ID token (openid-client does,
     * per FAPI 2.0), exchanges the code over mTLS, fetches the granted data and seals it.
     */
    async complete(customerId: string, callbackUrl: URL, pending: PendingLink): Promise<LinkView> {
      const portal = requirePortal();
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(await portal.config(), callbackUrl, {
          pkceCodeVerifier: pending.codeVerifier,
          expectedState: pending.state,
          idTokenExpected: true,
        });
      } catch (err) {
        if (err instanceof PortalUnavailable) throw unavailable();
        const e = err as { error?: string; code?: string };
        if (e.error === 'access_denied') {
          throw new PortalError(
            'PORTAL_ACCESS_DENIED',
            'The citizen refused.',
            'Вы отказали в доступе на Госуслугах. Доступ не предоставлен.',
            400,
          );
        }
        throw new PortalError(
          'PORTAL_LINK_FAILED',
          `Linking failed: ${e.error ?? e.code ?? 'unknown error'}.`,
          'Не удалось завершить связь с Госуслугами. Начните заново.',
          400,
        );
      }
      const sub = tokens.claims()!.sub;
      const detail = (
        tokens.authorization_details as { consent_id?: string; expires_at?: string }[] | undefined
      )?.find((d) => typeof d.consent_id === 'string');
      if (!detail?.consent_id) {
        // Without the consent id the bank could not honour its end: refuse to keep anything.
        throw new PortalError(
          'PORTAL_LINK_FAILED',
          'The token response names no consent.',
          'Госуслуги не сообщили номер согласия. Попробуйте связать профиль ещё раз.',
        );
      }
      await keep(customerId, {
        consentId: detail.consent_id,
        sub,
        tokens,
        expiresAt: detail.expires_at,
      });
      return (await this.view(customerId))!;
    },

    /**
     * J1: tokens the bank took with the consent grant for a connection the citizen started
     * on the portal; filed under the customer only if the data is theirs.
     */
    adopt: (
      customerId: string,
      input: {
        consentId: string;
        sub: string;
        tokens: {
          access_token: string;
          refresh_token?: string;
          expires_in?: number;
          scope?: string;
        };
        expiresAt: string;
        samePerson: (person: Record<string, unknown> | undefined) => boolean;
      },
    ) => keep(customerId, input),

    async view(customerId: string): Promise<LinkView | undefined> {
      const row = await store.get(customerId);
      if (!row) return undefined;
      const key = await subjectKey(row);
      return {
        consentId: row.consent_id,
        scopes: row.scopes,
        consentExpiresAt: new Date(row.consent_expires_at),
        pausedAt: row.paused_at ? new Date(row.paused_at) : null,
        linkedAt: new Date(row.linked_at),
        data: openJsonWithKey<Record<string, unknown>>(
          key,
          parseKeySealed(row.data),
          aad(customerId, 'data'),
        ),
        dataFetchedAt: new Date(row.data_fetched_at),
      };
    },

    /**
     * J6: the customer ends access from the bank. The refresh token is revoked at the
     * portal (which ends the grant and the consent there), then the vault row goes with
     * its data key. If the portal cannot be reached nothing is deleted: the customer is
     * told to try again rather than left believing access ended.
     */
    async unlink(customerId: string): Promise<'unlinked' | 'not-linked'> {
      const row = await store.get(customerId);
      if (!row) return 'not-linked';
      const key = await subjectKey(row);
      const tokens = openJsonWithKey<Tokens>(
        key,
        parseKeySealed(row.tokens),
        aad(customerId, 'tokens'),
      );
      key.fill(0);
      try {
        await client.tokenRevocation(
          await requirePortal().config(),
          tokens.refresh_token ?? tokens.access_token,
          {
            token_type_hint: tokens.refresh_token ? 'refresh_token' : 'access_token',
          },
        );
      } catch (err) {
        if (err instanceof PortalUnavailable || !(err as { error?: string }).error)
          throw unavailable();
        // The portal answered with an OAuth error: the grant is already gone there.
      }
      // Operations still running under the consent stop now and write nothing back.
      inFlight.abort(row.consent_id, 'unlinked');
      await store.endByConsent(row.consent_id, {
        id: deps.ids.uuid(),
        kind: 'unlinked',
        at: clock.now(),
        seen_at: clock.now(),
      });
      // The portal's own webhook will find nothing left to delete: prove it from here.
      void sendDeletionReceipt({ portal: deps.portal, clock }, row.consent_id, row.scopes).catch(
        () => undefined,
      );
      return 'unlinked';
    },

    /** J3: the status of the citizen's latest state service application, read live. */
    async testRequest(
      customerId: string,
    ): Promise<{ ok: true; orders: unknown } | { ok: false; code: string; message: string }> {
      const row = await store.get(customerId);
      if (!row)
        return {
          ok: false,
          code: 'NOT_LINKED',
          message: 'Доступ к Госуслугам не предоставлен. Сначала свяжите профиль с Госуслугами.',
        };
      const key = await subjectKey(row);
      let tokens = openJsonWithKey<Tokens>(
        key,
        parseKeySealed(row.tokens),
        aad(customerId, 'tokens'),
      );
      // From here a revocation cancels the request; one that landed since the row was read
      // is remembered by the registry, so the request starts cancelled.
      const op = inFlight.begin(row.consent_id);
      try {
        const refreshToken = tokens.refresh_token;
        if (tokens.access_expires_at - 30_000 < clock.now().getTime() && refreshToken) {
          // openid-client takes no signal: the guard drops a late answer instead.
          const fresh = await op.guard(
            requirePortal()
              .config()
              .then((config) => client.refreshTokenGrant(config, refreshToken)),
          );
          tokens = {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token ?? refreshToken,
            access_expires_at: clock.now().getTime() + (fresh.expires_in ?? 600) * 1000,
          };
          op.throwIfEnded();
          // Only onto the row of this consent: a deleted or replaced link stays as it is.
          await store.updateTokens(
            customerId,
            row.consent_id,
            serializeSealed(sealWithKey(key, tokens, aad(customerId, 'tokens'))),
          );
        }
        const res = await fetchResource(tokens.access_token, row.portal_sub, '/orders', op);
        if (res.ok) return { ok: true, orders: res.json };
        if (res.code === 'CONSENT_INACTIVE') await endConsent(row.consent_id, 'inactive');
        const messages: Record<string, string> = {
          SCOPE_NOT_GRANTED: 'Согласие не распространяется на заявления на госуслуги.',
          CONSENT_INACTIVE:
            'Согласие на Госуслугах отозвано или истекло. Банк удалил полученные с портала данные.',
          TOKEN_EXPIRED: 'Срок доступа истёк. Свяжите профиль с Госуслугами заново.',
          CONSENT_PAUSED:
            'Вы приостановили доступ банка на Госуслугах. Возобновить его можно там же, в разделе «Управление доступом».',
        };
        return {
          ok: false,
          code: res.code,
          message: messages[res.code] ?? `Госуслуги отказали в запросе (код ${res.code}).`,
        };
      } catch (err) {
        if (err instanceof ConsentEndedError) {
          return { ok: false, code: 'CONSENT_ENDED', message: CANCELLED_MESSAGES[err.endCause] };
        }
        const e = err as { error?: string };
        if (e.error === 'invalid_grant') {
          return {
            ok: false,
            code: 'CONSENT_INACTIVE',
            message: 'Согласие на Госуслугах отозвано или истекло.',
          };
        }
        if (err instanceof PortalUnavailable) {
          return {
            ok: false,
            code: 'PORTAL_UNAVAILABLE',
            message:
              'Госуслуги сейчас недоступны (технический сбой). Повторите попытку через несколько минут.',
          };
        }
        throw err;
      } finally {
        key.fill(0);
        op.end();
      }
    },
  };
}

export type PortalLinkService = ReturnType<typeof createPortalLinkService>;
