import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import type { LinkView } from './portal-link.service.js';

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

export function LinkStatus(props: { link: LinkView | undefined }) {
  const { link } = props;
  if (!link) {
    return <p data-testid="portal-link-status">Профиль не связан с Госуслугами.</p>;
  }
  return (
    <div data-testid="portal-link-status">
      <p>
        <strong>Доступ предоставлен</strong> до {ruDate(link.consentExpiresAt)}.
      </p>
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

export function BankSecurityPage(props: {
  chrome: Chrome;
  csrf: string;
  link: LinkView | undefined;
  configured: boolean;
  notice?: string | undefined;
  error?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Безопасность">
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <section class="card">
        <h2>Связь с Госуслугами</h2>
        <LinkStatus link={props.link} />
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
      </section>
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
}) {
  return (
    <Layout {...props.chrome} title="Госуслуги">
      <section class="card">
        <LinkStatus link={props.link} />
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
