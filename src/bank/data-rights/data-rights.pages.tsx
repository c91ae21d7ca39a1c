import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import type { DataRequestTable } from './data-request.store.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

const KIND = {
  export: 'Выгрузка данных',
  correction: 'Исправление данных',
  deletion: 'Удаление данных',
};
const STATUS = { done: 'выполнено', received: 'принято, в работе' };

export function DataRightsPage(props: {
  chrome: Chrome;
  csrf: string;
  requests: DataRequestTable[];
  notice?: string | undefined;
  error?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Мои данные">
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <section class="card">
        <h2>Выгрузить</h2>
        <p>Все данные, которые банк хранит о вас, включая полученные с Госуслуг, одним файлом.</p>
        <a class="button" href="/profile/data/export.json" data-testid="data-export">
          Скачать (JSON)
        </a>
      </section>
      <form class="card" method="post" action="/profile/data/correction">
        <CsrfField token={props.csrf} />
        <h2>Исправить</h2>
        <label for="what">Что неверно и как должно быть</label>
        <textarea
          id="what"
          name="what"
          rows={3}
          maxLength={2000}
          required
          data-testid="data-correction-text"
        />
        <div>
          <button type="submit" data-testid="data-correction">
            Отправить запрос
          </button>
        </div>
      </form>
      <form class="card" method="post" action="/profile/data/delete">
        <CsrfField token={props.csrf} />
        <h2>Удалить</h2>
        <p>
          Банк сразу удалит данные, полученные с Госуслуг, и отзовёт доступ к ним. Сведения, которые
          банк обязан хранить по закону (115-ФЗ: пять лет после окончания отношений), будут удалены
          по истечении этого срока.
        </p>
        <button type="submit" class="secondary" data-testid="data-delete">
          Удалить мои данные
        </button>
      </form>
      {props.requests.length > 0 ? (
        <section class="card">
          <h2>Ваши запросы</h2>
          <ul data-testid="data-requests">
            {props.requests.map((r) => (
              <li>
                {r.created_at.toLocaleString('ru-RU', { timeZone: 'Europe/Moscow' })} —{' '}
                {KIND[r.kind]}: {STATUS[r.status]}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </Layout>
  );
}
