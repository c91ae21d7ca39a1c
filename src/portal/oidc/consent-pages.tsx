import { OneTimeCodeInput } from '../../platform/login/login-pages.js';
import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import type { ReadinessProblem } from '../citizens/readiness.js';
import { CONSENT_ACTIONS, CONSENT_TYPES, type ConsentRequest } from '../consents/consent.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

export interface ScopeView {
  scope: string;
  label: string;
  required: boolean;
  checked: boolean;
  /** The real values that would be sent, masked where sensitive. */
  preview: { label: string; value: string }[];
}

function ruDays(n: number): string {
  const mod10 = n % 10;
  const mod100 = n % 100;
  if (mod10 === 1 && mod100 !== 11) return `${n} день`;
  if (mod10 >= 2 && mod10 <= 4 && (mod100 < 12 || mod100 > 14)) return `${n} дня`;
  return `${n} дней`;
}

/** J9: the account is not ready; say exactly what to fix. */
export function ReadinessPage(props: {
  chrome: Chrome;
  partnerName: string;
  problems: ReadinessProblem[];
}) {
  return (
    <Layout {...props.chrome} title="Подключение сервиса">
      <Alert kind="error">
        Чтобы предоставить доступ сервису «{props.partnerName}», приведите учётную запись в порядок:
      </Alert>
      <ul class="card" data-testid="readiness-problems">
        {props.problems.map((p) => (
          <li data-testid={`readiness-${p.code}`}>
            {p.text} <a href={p.fix.href}>{p.fix.label}</a>
          </li>
        ))}
      </ul>
      <p class="hint">
        После исправления вернитесь в приложение сервиса и начните подключение заново.
      </p>
    </Layout>
  );
}

/** The consent screen: who, why, for how long, and the real data, before anything leaves. */
export function ConsentPage(props: {
  chrome: Chrome;
  csrf: string;
  uid: string;
  partnerName: string;
  request: ConsentRequest;
  scopes: ScopeView[];
  error?: string | undefined;
  /** Where the forms go; the OAuth interaction's by default (J2), J1's on the portal. */
  confirmAction?: string | undefined;
  denyAction?: string | undefined;
  /** J1: the identifier at the partner the citizen entered. */
  clientRef?: { label: string; value: string } | undefined;
}) {
  const { request } = props;
  return (
    <Layout {...props.chrome} title="Предоставление доступа к данным">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <section class="card">
        <h2 data-testid="consent-partner">{props.partnerName}</h2>
        <p>запрашивает доступ к вашим данным на Госуслугах.</p>
        <dl class="facts">
          <dt>Цель</dt>
          <dd data-testid="consent-type">{CONSENT_TYPES[request.type]}</dd>
          {request.purposes.length > 0 ? (
            <>
              <dt>Для чего</dt>
              <dd>{request.purposes.join('; ')}</dd>
            </>
          ) : null}
          <dt>Действия с данными</dt>
          <dd>{request.actions.map((a) => CONSENT_ACTIONS[a]).join('; ')}</dd>
          <dt>Срок действия</dt>
          <dd data-testid="consent-duration">
            {ruDays(request.durationDays)}, можно отозвать в любой момент
          </dd>
          {request.applicationRef ? (
            <>
              <dt>Заявка</dt>
              <dd>№ {request.applicationRef}</dd>
            </>
          ) : null}
          {props.clientRef ? (
            <>
              <dt>{props.clientRef.label}</dt>
              <dd data-testid="consent-client-ref">{props.clientRef.value}</dd>
            </>
          ) : null}
        </dl>
      </section>
      <form
        class="card"
        method="post"
        action={props.confirmAction ?? `/interaction/${props.uid}/confirm`}
      >
        <CsrfField token={props.csrf} />
        <h2>Какие данные получит сервис</h2>
        <p class="hint">
          Обязательные данные отключить нельзя. Необязательные можно не передавать.
        </p>
        {props.scopes.map((s) => (
          <fieldset class="scope" data-testid={`consent-preview-${s.scope}`}>
            <label>
              <input
                type="checkbox"
                name="scope"
                value={s.scope}
                checked={s.checked}
                disabled={s.required}
                data-testid={`consent-scope-${s.scope}`}
              />{' '}
              {s.label}
              {s.required ? <span class="hint"> (обязательно)</span> : null}
            </label>
            {s.required ? <input type="hidden" name="scope" value={s.scope} /> : null}
            <dl class="facts">
              {s.preview.map((p) => (
                <>
                  <dt>{p.label}</dt>
                  <dd>{p.value}</dd>
                </>
              ))}
            </dl>
          </fieldset>
        ))}
        <div>
          <button type="submit" data-testid="consent-approve">
            Разрешить
          </button>
        </div>
      </form>
      <form method="post" action={props.denyAction ?? `/interaction/${props.uid}/deny`}>
        <CsrfField token={props.csrf} />
        <button type="submit" class="secondary" data-testid="consent-deny">
          Отказать
        </button>
      </form>
    </Layout>
  );
}

/** Approval is confirmed with a one-time code bound to this very request. */
export function ConsentCodePage(props: {
  chrome: Chrome;
  csrf: string;
  uid: string;
  partnerName: string;
  method: 'sms' | 'totp';
  maskedPhone: string;
  scopeLabels: string[];
  error?: string | undefined;
  approveAction?: string | undefined;
}) {
  return (
    <Layout {...props.chrome} title="Подтверждение доступа">
      {props.error ? <Alert kind="error">{props.error}</Alert> : null}
      <form
        class="card"
        method="post"
        action={props.approveAction ?? `/interaction/${props.uid}/approve`}
        autocomplete="off"
      >
        <CsrfField token={props.csrf} />
        <p>
          Вы разрешаете сервису «{props.partnerName}» получить: {props.scopeLabels.join(', ')}.
        </p>
        <OneTimeCodeInput hint={{ method: props.method, maskedPhone: props.maskedPhone }} />
      </form>
    </Layout>
  );
}
