import * as client from 'openid-client';
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
import { PortalUnavailable, type PortalClient } from './portal-client.js';
import { sendDeletionReceipt } from './portal-events.js';
import type { PortalLinkStore, PortalLinkTable } from './portal-link.store.js';

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
  linkedAt: Date;
  data: Record<string, unknown>;
  dataFetchedAt: Date;
}

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
}) {
  const { store, keyring, clock } = deps;
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

  async function fetchResource(token: string, sub: string, path: string) {
    const portal = requirePortal();
    const res = await portal.get(
      `${portal.material.dataApi}/prns/${encodeURIComponent(sub)}${path}`,
      {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
      },
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

  return {
    configured: () => deps.portal !== undefined,

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
      const grantedScopes = new Set(
        String(tokens.scope ?? '')
          .split(' ')
          .filter(Boolean),
      );
      const data: Record<string, unknown> = {};
      for (const item of FETCH) {
        if (item.scope !== 'openid' && !grantedScopes.has(item.scope)) continue;
        const res = await fetchResource(tokens.access_token, sub, item.path);
        if (res.ok) data[item.resource] = res.json;
      }
      const key = createSubjectKey();
      const now = clock.now();
      const stored: Tokens = {
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        access_expires_at: now.getTime() + (tokens.expires_in ?? 600) * 1000,
      };
      await store.upsert({
        customer_id: customerId,
        consent_id: detail.consent_id,
        portal_sub: sub,
        scopes: [...grantedScopes],
        consent_expires_at: detail?.expires_at
          ? new Date(detail.expires_at)
          : new Date(now.getTime() + 365 * 86_400_000),
        linked_at: now,
        subject_key: JSON.stringify(await wrapSubjectKey(keyring, key)),
        tokens: serializeSealed(sealWithKey(key, stored, aad(customerId, 'tokens'))),
        data: serializeSealed(sealWithKey(key, data, aad(customerId, 'data'))),
        data_fetched_at: now,
      });
      key.fill(0);
      return (await this.view(customerId))!;
    },

    async view(customerId: string): Promise<LinkView | undefined> {
      const row = await store.get(customerId);
      if (!row) return undefined;
      const key = await subjectKey(row);
      return {
        consentId: row.consent_id,
        scopes: row.scopes,
        consentExpiresAt: new Date(row.consent_expires_at),
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
      await store.delete(customerId);
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
      try {
        if (tokens.access_expires_at - 30_000 < clock.now().getTime() && tokens.refresh_token) {
          const fresh = await client.refreshTokenGrant(
            await requirePortal().config(),
            tokens.refresh_token,
          );
          tokens = {
            access_token: fresh.access_token,
            refresh_token: fresh.refresh_token ?? tokens.refresh_token,
            access_expires_at: clock.now().getTime() + (fresh.expires_in ?? 600) * 1000,
          };
          await store.updateTokens(
            customerId,
            serializeSealed(sealWithKey(key, tokens, aad(customerId, 'tokens'))),
          );
        }
        const res = await fetchResource(tokens.access_token, row.portal_sub, '/orders');
        if (res.ok) return { ok: true, orders: res.json };
        if (res.code === 'CONSENT_INACTIVE') await store.delete(customerId);
        const messages: Record<string, string> = {
          SCOPE_NOT_GRANTED: 'Согласие не распространяется на заявления на госуслуги.',
          CONSENT_INACTIVE:
            'Согласие на Госуслугах отозвано или истекло. Банк удалил полученные с портала данные.',
          TOKEN_EXPIRED: 'Срок доступа истёк. Свяжите профиль с Госуслугами заново.',
        };
        return {
          ok: false,
          code: res.code,
          message: messages[res.code] ?? `Госуслуги отказали в запросе (код ${res.code}).`,
        };
      } catch (err) {
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
      }
    },
  };
}

export type PortalLinkService = ReturnType<typeof createPortalLinkService>;
