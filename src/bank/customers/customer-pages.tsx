import { Layout, type LayoutProps } from '../../platform/views/layout.js';
import {
  LinkHistory,
  LinkNotices,
  LinkStatus,
  PortalDataSection,
} from '../portal-access/portal-pages.js';
import type { LinkView } from '../portal-access/portal-link.service.js';
import type { PortalLinkEventTable } from '../portal-access/portal-link.store.js';
import type { Customer } from './customer.service.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

function ruDate(iso: string): string {
  const [y, m, d] = iso.slice(0, 10).split('-');
  return `${d}.${m}.${y}`;
}

export function ProfilePage(props: {
  chrome: Chrome;
  customer: Customer;
  link?: LinkView | undefined;
  notices?: PortalLinkEventTable[] | undefined;
  history?: PortalLinkEventTable[] | undefined;
}) {
  const p = props.customer.personal;
  return (
    <Layout {...props.chrome} title="Профиль">
      <LinkNotices notices={props.notices} />
      <section class="card" data-testid="bank-personal-data">
        <h2>Личные данные</h2>
        <dl class="facts">
          <dt>Номер клиента</dt>
          <dd data-testid="bank-client-number">{props.customer.clientNumber}</dd>
          <dt>ФИО</dt>
          <dd>{[p.lastName, p.firstName, p.middleName].filter(Boolean).join(' ')}</dd>
          <dt>Дата рождения</dt>
          <dd>{ruDate(p.birthDate)}</dd>
          <dt>Телефон</dt>
          <dd>{p.phone}</dd>
          <dt>Электронная почта</dt>
          <dd>{p.email ?? 'не указана'}</dd>
        </dl>
        <p class="hint">
          Проверьте, что данные верны: после связи с Госуслугами банк сверит их с данными портала.
          Номер клиента можно указать на Госуслугах, чтобы подключить банк прямо с портала.
        </p>
        <LinkStatus link={props.link} />
        <LinkHistory history={props.history} />
      </section>
      {props.link ? <PortalDataSection link={props.link} /> : null}
    </Layout>
  );
}

export function OperatorHomePage(props: { chrome: Chrome }) {
  return (
    <Layout {...props.chrome} title="Рабочее место оператора">
      <section class="card" data-testid="operator-home">
        <h2>Заявки</h2>
        <p>Новых заявок нет.</p>
      </section>
      <section class="card">
        <h2>Обращения в поддержку</h2>
        <p>Открытых обращений нет.</p>
      </section>
    </Layout>
  );
}
