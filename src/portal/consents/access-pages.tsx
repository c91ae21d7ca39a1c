import { OneTimeCodeInput } from '../../platform/login/login-pages.js';
import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import {
  CONSENT_STATUS_LABELS,
  CONSENT_TYPES,
  type Consent,
  type ConsentEvent,
} from './consent.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

export interface ConnectionView {
  clientId: string;
  partnerName: string;
  consent: Consent;
  scopeLabels: string[];
  events: ConsentEvent[];
  /** Earlier consents with the same partner, newest first. */
  earlier: Consent[];
  /** J1 that did not go through: why, in words. */
  failure?: string | undefined;
}

const EVENT_LABELS: Record<string, string> = {
  granted: 'Доступ предоставлен',
  revoked: 'Доступ отключён',
  expired: 'Истёк срок согласия',
  paused: 'Доступ приостановлен',
  resumed: 'Доступ возобновлён',
  acknowledged: 'Сервис получил уведомление об отключении',
  deletion_confirmed: 'Сервис подтвердил удаление данных (подписанная квитанция)',
  connected: 'Сервис подтвердил подключение',
  connection_failed: 'Подключение не выполнено',
  deletion_overdue: 'Сервис не подтвердил удаление данных в срок',
};

/** The row's status in words; a failed J1 connection reads «Не выполнено». */
const statusLabel = (c: ConnectionView) =>
  c.failure
    ? 'Не выполнено'
    : c.consent.status === 'pending'
      ? 'Ожидает подтверждения сервиса'
      : CONSENT_STATUS_LABELS[c.consent.status];

const when = (d: Date) =>
  d.toLocaleString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
const day = (d: Date) =>
  d.toLocaleDateString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
  });

/** «Настройки → Управление доступом»: who has access to what, since when, until when. */
export function AccessManagementPage(props: {
  chrome: Chrome;
  csrf: string;
  connections: ConnectionView[];
  notice?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Управление доступом">
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      <p>
        Организации и сервисы, которым вы предоставили доступ к своим данным на Госуслугах.{' '}
        <a href="/access/log" data-testid="access-log-link">
          Кто запрашивал мои данные
        </a>
      </p>
      <p>
        <a class="button" href="/access/connect" data-testid="connect-services">
          Подключить сервисы
        </a>
      </p>
      <div data-testid="connections-list">
        {props.connections.length === 0 ? (
          <section class="card">
            <p>Вы пока никому не предоставляли доступ.</p>
          </section>
        ) : (
          props.connections.map((c) => (
            <section class="card" data-testid={`connection-${c.clientId}`}>
              <h2>{c.partnerName}</h2>
              <dl class="facts">
                <dt>Статус</dt>
                <dd data-testid="connection-status">{statusLabel(c)}</dd>
                {c.failure ? (
                  <>
                    <dt>Причина</dt>
                    <dd data-testid="connection-failure">{c.failure}</dd>
                  </>
                ) : null}
                <dt>Цель</dt>
                <dd>{CONSENT_TYPES[c.consent.type]}</dd>
                <dt>Данные</dt>
                <dd data-testid="connection-scopes">{c.scopeLabels.join(', ')}</dd>
                <dt>Предоставлен</dt>
                <dd>{c.consent.grantedAt ? when(c.consent.grantedAt) : '—'}</dd>
                <dt>Действует до</dt>
                <dd>{day(c.consent.expiresAt)}</dd>
              </dl>
              <div class="actions">
                {c.consent.status === 'active' ? (
                  <form method="post" action={`/access/${c.consent.id}/pause`}>
                    <CsrfField token={props.csrf} />
                    <button type="submit" class="secondary" data-testid="connection-pause">
                      Приостановить
                    </button>
                  </form>
                ) : null}
                {c.consent.status === 'paused' ? (
                  <form method="post" action={`/access/${c.consent.id}/resume`}>
                    <CsrfField token={props.csrf} />
                    <button type="submit" data-testid="connection-resume">
                      Возобновить
                    </button>
                  </form>
                ) : null}
                {['pending', 'active', 'paused'].includes(c.consent.status) ? (
                  <form method="post" action={`/access/${c.consent.id}/revoke`}>
                    <CsrfField token={props.csrf} />
                    <button type="submit" class="secondary" data-testid="connection-revoke">
                      Отключить
                    </button>
                  </form>
                ) : null}
              </div>
              <details>
                <summary>История</summary>
                <ul data-testid="connection-history">
                  {c.events.map((e) => (
                    <li>
                      {when(e.at)} — {EVENT_LABELS[e.type] ?? e.type}
                    </li>
                  ))}
                  {c.earlier.map((e) => (
                    <li class="hint">
                      Прежнее согласие от {e.grantedAt ? day(e.grantedAt) : day(e.createdAt)}:{' '}
                      {e.status === 'pending'
                        ? 'Ожидает подтверждения сервиса'
                        : CONSENT_STATUS_LABELS[e.status]}
                    </li>
                  ))}
                </ul>
              </details>
            </section>
          ))
        )}
      </div>
    </Layout>
  );
}

/** Revocation is confirmed with a one-time code bound to this consent. */
export function RevokeConfirmPage(props: {
  chrome: Chrome;
  csrf: string;
  consentId: string;
  partnerName: string;
  method: 'sms' | 'totp';
  maskedPhone: string;
  error?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Отключение доступа">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <form
        class="card"
        method="post"
        action={`/access/${props.consentId}/revoke/confirm`}
        autocomplete="off"
      >
        <CsrfField token={props.csrf} />
        <p>
          Сервис «{props.partnerName}» больше не сможет получать ваши данные. Он обязан удалить уже
          полученные данные.
        </p>
        <OneTimeCodeInput hint={{ method: props.method, maskedPhone: props.maskedPhone }} />
      </form>
      <p>
        <a href="/access">Не отключать</a>
      </p>
    </Layout>
  );
}

export interface AccessLogEntry {
  at: Date;
  clientId: string;
  partnerName: string;
  consentId: string;
  /** Russian name of the data category read. */
  category: string;
  fields: string[];
  /** Its leaf in the audit log's Merkle tree: the proof is /access/log/proof/<leafIndex>. */
  leafIndex: number;
}

/** J12 «Кто запрашивал мои данные»: every read from the audit log, newest first. */
export function AccessLogPage(props: {
  chrome: Chrome;
  entries: AccessLogEntry[];
  partners: { clientId: string; name: string }[];
  selected?: string | undefined;
}) {
  const query = props.selected ? `?client=${encodeURIComponent(props.selected)}` : '';
  return (
    <Layout {...props.chrome} title="Кто запрашивал мои данные">
      <form class="card" method="get" action="/access/log">
        <label for="client">Организация</label>
        <select id="client" name="client" data-testid="access-log-filter">
          <option value="">Все</option>
          {props.partners.map((p) => (
            <option value={p.clientId} selected={p.clientId === props.selected}>
              {p.name}
            </option>
          ))}
        </select>
        <div>
          <button type="submit">Показать</button>{' '}
          <a
            class="button secondary"
            href={`/access/log.json${query}`}
            data-testid="access-log-export"
          >
            Скачать (JSON)
          </a>
        </div>
      </form>
      {props.entries.length === 0 ? (
        <p data-testid="access-log-empty">Обращений к вашим данным не было.</p>
      ) : (
        <table data-testid="access-log">
          <thead>
            <tr>
              <th>Когда</th>
              <th>Организация</th>
              <th>Какие данные</th>
              <th>Запись в журнале</th>
            </tr>
          </thead>
          <tbody>
            {props.entries.map((e) => (
              <tr data-testid="access-log-entry">
                <td>{when(e.at)}</td>
                <td>{e.partnerName}</td>
                <td>{e.category}</td>
                <td>
                  <a href={`/access/log/proof/${e.leafIndex}`} data-testid="access-log-proof">
                    Доказательство
                  </a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}
