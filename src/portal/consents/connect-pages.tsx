import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import { CONSENT_TYPES, type ConsentType } from './consent.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

export interface ConnectablePartner {
  clientId: string;
  name: string;
  type: ConsentType;
  scopeLabels: string[];
}

/** «Подключить сервисы»: partners that accept connections started here (J1). */
export function ConnectListPage(props: { chrome: Chrome; partners: ConnectablePartner[] }) {
  return (
    <Layout {...props.chrome} title="Подключить сервисы">
      <p>
        Сервисы, которые можно подключить прямо с Госуслуг. Вы увидите, какие данные и для чего
        получит сервис, и подтвердите подключение кодом.
      </p>
      <div data-testid="connectable-list">
        {props.partners.length === 0 ? (
          <section class="card">
            <p>Сейчас нет сервисов, доступных для подключения с портала.</p>
          </section>
        ) : (
          props.partners.map((p) => (
            <section class="card" data-testid={`connectable-${p.clientId}`}>
              <h2>{p.name}</h2>
              <dl class="facts">
                <dt>Цель</dt>
                <dd>{CONSENT_TYPES[p.type]}</dd>
                <dt>Данные</dt>
                <dd>{p.scopeLabels.join(', ')}</dd>
              </dl>
              <a
                class="button"
                href={`/access/connect/${encodeURIComponent(p.clientId)}`}
                data-testid={`connect-${p.clientId}`}
              >
                Подключить
              </a>
            </section>
          ))
        )}
      </div>
      <p>
        <a href="/access">Вернуться к управлению доступом</a>
      </p>
    </Layout>
  );
}

/** J1, first step: the citizen's identifier at the partner (how the partner finds them). */
export function ConnectStartPage(props: {
  chrome: Chrome;
  csrf: string;
  clientId: string;
  partnerName: string;
  label: string;
  value?: string | undefined;
  error?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title={`Подключение: ${props.partnerName}`}>
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <form
        class="card"
        method="post"
        action={`/access/connect/${encodeURIComponent(props.clientId)}`}
        autocomplete="off"
      >
        <CsrfField token={props.csrf} />
        <p>
          Укажите, как вас знает сервис «{props.partnerName}»: по этому идентификатору он найдёт вас
          среди своих клиентов.
        </p>
        <label for="client_ref">{props.label}</label>
        <input
          id="client_ref"
          name="client_ref"
          required
          maxlength={64}
          value={props.value ?? ''}
          data-testid="connect-client-ref"
        />
        <button type="submit" data-testid="connect-continue">
          Продолжить
        </button>
      </form>
      <p>
        <a href="/access/connect">К списку сервисов</a>
      </p>
    </Layout>
  );
}
