import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import { liveStateKey, type LinkView } from './portal-link.service.js';
import type { PortalLinkEventTable } from './portal-link.store.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

/** How the bank names the data it receives (the portal's catalog is the portal's). */
export const SCOPE_LABELS: Record<string, string> = {
  fullname: 'ФИО',
  birthdate: 'дата рождения',
  gender: 'пол',
  snils: 'СНИЛС',
  inn: 'ИНН',
  id_doc: 'паспорт',
  addresses: 'адреса',
  contacts: 'телефон и почта',
  orders: 'заявления на госуслуги',
};

const ruDate = (d: Date) =>
  d.toLocaleDateString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
  });

const ruDateTime = (d: Date) =>
  d.toLocaleString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });

/** Where the live script polls, and the attributes it reads (see assets/portal-link-live.js). */
export const LIVE_STATUS_PATH = '/security/portal/status.json';
export const LIVE_SCRIPT_PATH = '/assets/portal-link-live.js';

/**
 * The link's status. With `live`, the page follows the link by itself: the script
 * polls the state and, when it changes (the portal ended the consent, a new link),
 * loads `live.then` afresh. Without JavaScript the page is the same, only not live.
 */
export function LinkStatus(props: { link: LinkView | undefined; live?: { then: string } }) {
  const { link, live } = props;
  const liveAttrs = live
    ? {
        'data-portal-live': LIVE_STATUS_PATH,
        'data-portal-state': liveStateKey(link),
        'data-portal-then': live.then,
        'aria-live': 'polite' as const,
      }
    : {};
  if (!link) {
    return (
      <p data-testid="portal-link-status" {...liveAttrs}>
        Профиль не связан с Госуслугами.
      </p>
    );
  }
  return (
    <div data-testid="portal-link-status" {...liveAttrs}>
      {link.pausedAt ? (
        <p>
          <strong>Доступ приостановлен</strong> на Госуслугах с {ruDate(link.pausedAt)}: банк не
          может запрашивать данные, пока вы не возобновите доступ на портале.
        </p>
      ) : (
        <p>
          <strong>Доступ предоставлен</strong> до {ruDate(link.consentExpiresAt)}.
        </p>
      )}
      <p class="hint">
        Данные:{' '}
        {link.scopes
          .filter((s) => SCOPE_LABELS[s])
          .map((s) => SCOPE_LABELS[s])
          .join(', ')}
        . Получены {ruDate(link.dataFetchedAt)}.
      </p>
    </div>
  );
}

/** The script that keeps a `live` LinkStatus current (served by the bank: script-src 'self'). */
export function LiveLinkScript() {
  return <script src={LIVE_SCRIPT_PATH} defer />;
}

/** One line of the customer's link history, e.g. «Доступ отозван на Госуслугах 01.12.2026, 12:00; данные удалены». */
export function linkEventText(event: Pick<PortalLinkEventTable, 'kind' | 'at'>): string {
  const at = ruDateTime(new Date(event.at));
  switch (event.kind) {
    case 'revoked':
      return `Доступ отозван на Госуслугах ${at}; данные удалены`;
    case 'expired':
      return `Срок согласия на Госуслугах истёк ${at}; данные удалены`;
    case 'inactive':
      return `Согласие на Госуслугах перестало действовать ${at}; данные удалены`;
    case 'unlinked':
      return `Доступ к Госуслугам отключён в банке ${at}; данные удалены`;
  }
}

const NOTICE_TEXT: Record<PortalLinkEventTable['kind'], string> = {
  revoked: 'Доступ к данным Госуслуг отключён: согласие отозвано на Госуслугах',
  expired: 'Доступ к данным Госуслуг отключён: срок согласия на Госуслугах истёк',
  inactive: 'Доступ к данным Госуслуг отключён: согласие на Госуслугах больше не действует',
  unlinked: 'Доступ к данным Госуслуг отключён в банке',
};

/** What happened since the customer last looked (shown once). */
export function LinkNotices(props: { notices?: PortalLinkEventTable[] | undefined }) {
  if (!props.notices?.length) return null;
  return (
    <div data-testid="portal-link-notice">
      {props.notices.map((n) => (
        <Alert kind="info">
          {NOTICE_TEXT[n.kind]} ({ruDateTime(new Date(n.at))}). Банк удалил полученные с портала
          данные и отменил запросы, которые для них выполнялись. Связать профиль с Госуслугами можно
          снова в любой момент.
        </Alert>
      ))}
    </div>
  );
}

export function LinkHistory(props: { history?: PortalLinkEventTable[] | undefined }) {
  if (!props.history?.length) return null;
  return (
    <>
      <h3>История доступа</h3>
      <ul class="hint" data-testid="portal-link-history">
        {props.history.map((e) => (
          <li>{linkEventText(e)}</li>
        ))}
      </ul>
    </>
  );
}

export function BankSecurityPage(props: {
  chrome: Chrome;
  csrf: string;
  link: LinkView | undefined;
  configured: boolean;
  notice?: string | undefined;
  error?: string | undefined;
  notices?: PortalLinkEventTable[] | undefined;
  history?: PortalLinkEventTable[] | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Безопасность">
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <LinkNotices notices={props.notices} />
      <section class="card">
        <h2>Связь с Госуслугами</h2>
        <LinkStatus link={props.link} live={{ then: '/security' }} />
        {props.configured ? (
          <a class="button" href="/security/portal/link" data-testid="link-portal">
            {props.link ? 'Обновить данные с Госуслуг' : 'Связать с Госуслугами'}
          </a>
        ) : (
          <p class="hint">Связь с Госуслугами пока не настроена в банке.</p>
        )}
        {props.link ? (
          <form method="post" action="/security/portal/unlink">
            <CsrfField token={props.csrf} />
            <p class="hint">Банк отзовёт доступ на Госуслугах и удалит полученные оттуда данные.</p>
            <button type="submit" class="secondary" data-testid="unlink-portal">
              Отключить доступ к Госуслугам
            </button>
          </form>
        ) : null}
        <LinkHistory history={props.history} />
      </section>
      <LiveLinkScript />
    </Layout>
  );
}

export function ReconfirmPage(props: { chrome: Chrome; csrf: string; error?: string | undefined }) {
  return (
    <Layout {...props.chrome} title="Связать с Госуслугами">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <form class="card" method="post" action="/security/portal/link">
        <CsrfField token={props.csrf} />
        <p>
          Для безопасности подтвердите пароль от интернет-банка. Затем вы перейдёте на Госуслуги,
          войдёте и решите, какие данные передать банку.
        </p>
        <label for="password">Пароль</label>
        <input
          type="password"
          id="password"
          name="password"
          autocomplete="current-password"
          required
          maxLength={256}
          data-testid="reconfirm-password"
        />
        <div>
          <button type="submit" data-testid="reconfirm-submit">
            Продолжить на Госуслугах
          </button>
        </div>
      </form>
    </Layout>
  );
}

export function GosuslugiPage(props: {
  chrome: Chrome;
  csrf: string;
  link: LinkView | undefined;
  result?: { ok: true; text: string } | { ok: false; text: string } | undefined;
  notices?: PortalLinkEventTable[] | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Госуслуги">
      <LinkNotices notices={props.notices} />
      <section class="card">
        <LinkStatus link={props.link} live={{ then: '/gosuslugi' }} />
        {props.link ? null : (
          <a class="button" href="/security/portal/link" data-testid="link-portal">
            Связать с Госуслугами
          </a>
        )}
      </section>
      <form class="card" method="post" action="/gosuslugi/test">
        <CsrfField token={props.csrf} />
        <h2>Проверка связи</h2>
        <p>Банк запросит на Госуслугах статус вашего последнего заявления на госуслугу.</p>
        <button type="submit" data-testid="portal-test-request">
          Выполнить тестовый запрос
        </button>
        {props.result ? (
          <div data-testid="portal-test-result">
            <Alert kind={props.result.ok ? 'success' : 'error'}>{props.result.text}</Alert>
          </div>
        ) : null}
      </form>
      <LiveLinkScript />
    </Layout>
  );
}

export function PortalDataSection(props: { link: LinkView }) {
  const person = (props.link.data.person ?? {}) as Record<string, string | undefined>;
  const docs = ((props.link.data.docs as { elements?: Record<string, string>[] } | undefined)
    ?.elements ?? [])[0];
  return (
    <section class="card" data-testid="portal-data">
      <h2>Данные с Госуслуг</h2>
      <dl class="facts">
        {person.lastName ? (
          <>
            <dt>ФИО</dt>
            <dd>
              {[person.lastName, person.firstName, person.middleName].filter(Boolean).join(' ')}
            </dd>
          </>
        ) : null}
        {person.birthDate ? (
          <>
            <dt>Дата рождения</dt>
            <dd>{person.birthDate}</dd>
          </>
        ) : null}
        {person.snils ? (
          <>
            <dt>СНИЛС</dt>
            <dd>{person.snils}</dd>
          </>
        ) : null}
        {person.inn ? (
          <>
            <dt>ИНН</dt>
            <dd>{person.inn}</dd>
          </>
        ) : null}
        {docs ? (
          <>
            <dt>Паспорт</dt>
            <dd>
              {docs.series} {docs.number}, выдан {docs.issueDate}
            </dd>
          </>
        ) : null}
      </dl>
    </section>
  );
}
