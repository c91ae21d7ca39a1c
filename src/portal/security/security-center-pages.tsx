import { Alert, CsrfField, Layout, type LayoutProps } from '../../platform/views/layout.js';
import type { AnomalyRuleId } from './anomaly-config.js';
import type { TakenAction } from './anomaly-rules.js';
import type { AlertView } from './anomaly.service.js';
import type { AuditFeedEntry, AuditFilter } from './audit-feed.store.js';

type Chrome = Omit<LayoutProps, 'title' | 'children'>;

/** The script that keeps the alerts and the audit log live (CSP: script-src 'self'). */
export const LIVE_SCRIPT_PATH = '/assets/security-center-live.js';

export const RULE_LABELS: Record<AnomalyRuleId, string> = {
  request_frequency: 'Частота запросов',
  impossible_travel: 'Невозможное перемещение',
  new_device: 'Новое устройство',
  token_certificate_mismatch: 'Токен с чужим сертификатом',
  scope_beyond_consent: 'Данные сверх согласия',
  subject_mismatch: 'Чужой субъект',
};

export const SEVERITY_LABELS: Record<string, string> = {
  low: 'низкая',
  medium: 'средняя',
  high: 'высокая',
};

export const ACTION_LABELS: Record<TakenAction, string> = {
  session_blocked: 'вход заблокирован, сеансы завершены',
  consent_paused: 'согласие приостановлено',
  citizen_notified: 'гражданин уведомлён',
  partner_notified: 'партнёру отправлено security.alert',
};

export const when = (d: Date) =>
  d.toLocaleString('ru-RU', {
    timeZone: 'Europe/Moscow',
    day: '2-digit',
    month: '2-digit',
    year: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });

/** An alert as a row: the same fields the live stream sends (see alertEvent). */
export interface AlertRow {
  seq: string;
  id: string;
  at: string;
  rule: string;
  code: string;
  severity: string;
  severityLabel: string;
  explanation: string;
  actions: string;
  objects: string;
}

export function alertRow(a: AlertView, partner: string | undefined): AlertRow {
  const objects = [
    a.consentId ? `согласие ${a.consentId}` : undefined,
    a.citizenId ? `гражданин ${a.citizenId}` : undefined,
    a.clientId ? `партнёр ${partner ?? a.clientId}` : undefined,
    a.ip ? `IP ${a.ip}` : undefined,
  ].filter(Boolean);
  return {
    seq: a.seq,
    id: a.id,
    at: when(a.at),
    rule: RULE_LABELS[a.rule as AnomalyRuleId] ?? a.rule,
    code: a.code,
    severity: a.severity,
    severityLabel: SEVERITY_LABELS[a.severity] ?? a.severity,
    explanation: a.explanation,
    actions: a.actions.map((x) => ACTION_LABELS[x] ?? x).join('; ') || 'только оповещение',
    objects: objects.join(', '),
  };
}

/** An audit entry as a row (details as compact JSON, cut short). */
export interface AuditRowView {
  seq: string;
  at: string;
  actor: string;
  action: string;
  subject: string;
  details: string;
}

export function auditRow(e: AuditFeedEntry): AuditRowView {
  const details = JSON.stringify(e.details);
  return {
    seq: e.seq,
    at: when(e.at),
    actor: e.actor,
    action: e.action,
    subject: e.subject ?? '',
    details: details === '{}' ? '' : details.length > 300 ? `${details.slice(0, 299)}…` : details,
  };
}

export interface BlockRow {
  id: string;
  citizen: string;
  reason: string;
  since: string;
  until: string;
}

function AlertTr(props: { a: AlertRow }) {
  const { a } = props;
  return (
    <tr data-testid="security-alert" data-alert-code={a.code} class={`severity-${a.severity}`}>
      <td>{a.at}</td>
      <td>
        {a.rule}
        <br />
        <code>{a.code}</code>
      </td>
      <td>{a.severityLabel}</td>
      <td>{a.explanation}</td>
      <td>{a.actions}</td>
      <td class="hint">{a.objects}</td>
    </tr>
  );
}

function AuditTr(props: { e: AuditRowView }) {
  const { e } = props;
  return (
    <tr data-testid="audit-entry">
      <td>{e.seq}</td>
      <td>{e.at}</td>
      <td>
        <code>{e.actor}</code>
      </td>
      <td>
        <code>{e.action}</code>
      </td>
      <td>
        <code>{e.subject}</code>
      </td>
      <td class="hint">
        <code>{e.details}</code>
      </td>
    </tr>
  );
}

/**
 * «Центр безопасности»: alerts of the anomaly rules and the audit log, both live over
 * Server-Sent Events; citizens whose login the rules blocked, each with «Разблокировать»;
 * the IP blocks on their own page.
 */
export function SecurityCenterPage(props: {
  chrome: Chrome;
  csrf: string;
  alerts: AlertRow[];
  blocks: BlockRow[];
  audit: AuditRowView[];
  filter: AuditFilter;
  streamUrl: string;
  notice?: string | undefined;
}) {
  const f = props.filter;
  return (
    <Layout {...props.chrome} title="Центр безопасности">
      {props.notice ? <Alert kind="success">{props.notice}</Alert> : null}
      <p>
        <a href="/security-center/blocks" data-testid="security-ip-blocks">
          Блокировки IP-адресов →
        </a>
      </p>
      <p class="hint" data-security-live={props.streamUrl} data-testid="security-live-status">
        Оповещения и журнал аудита обновляются сами.
      </p>

      <section class="card" data-testid="security-alerts">
        <h2>Оповещения</h2>
        <p class="hint">
          Срабатывания правил обнаружения аномалий. Каждое объясняет себя; что сделано, указано в
          столбце «Меры».
        </p>
        <table>
          <thead>
            <tr>
              <th>Время (МСК)</th>
              <th>Правило</th>
              <th>Важность</th>
              <th>Объяснение</th>
              <th>Меры</th>
              <th>Объекты</th>
            </tr>
          </thead>
          <tbody data-live-alerts>
            {props.alerts.map((a) => (
              <AlertTr a={a} />
            ))}
          </tbody>
        </table>
        {props.alerts.length === 0 ? (
          <p class="hint" data-live-alerts-empty>
            Оповещений пока нет.
          </p>
        ) : null}
      </section>

      <section class="card" data-testid="security-sessions">
        <h2>Заблокированные входы</h2>
        <p class="hint">
          Граждане, чьи сеансы правила завершили и чей вход заблокирован до указанного времени.
          «Разблокировать» снова разрешает вход; это записывается в журнал аудита.
        </p>
        {props.blocks.length === 0 ? (
          <p>Заблокированных входов нет.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Гражданин</th>
                <th>Причина</th>
                <th>С</th>
                <th>До</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {props.blocks.map((b) => (
                <tr data-testid="security-session">
                  <td>{b.citizen}</td>
                  <td>{b.reason}</td>
                  <td>{b.since}</td>
                  <td>{b.until}</td>
                  <td>
                    <form method="post" action={`/security-center/sessions/${b.id}/unblock`}>
                      <CsrfField token={props.csrf} />
                      <button type="submit" class="secondary" data-testid="session-unblock">
                        Разблокировать
                      </button>
                    </form>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>

      <section class="card" data-testid="audit-stream">
        <h2>Журнал аудита</h2>
        <form method="get" action="/security-center" data-testid="audit-filter">
          <label for="audit-actor">Кто (начало)</label>
          <input
            type="text"
            id="audit-actor"
            name="actor"
            maxLength={200}
            value={f.actor ?? ''}
            placeholder="partner:, citizen:, system:"
            data-testid="audit-filter-actor"
          />
          <label for="audit-action">Действие (начало)</label>
          <input
            type="text"
            id="audit-action"
            name="action"
            maxLength={200}
            value={f.action ?? ''}
            placeholder="login., consent., data.read"
            data-testid="audit-filter-action"
          />
          <label for="audit-subject">Объект (начало)</label>
          <input
            type="text"
            id="audit-subject"
            name="subject"
            maxLength={200}
            value={f.subject ?? ''}
            placeholder="consent:, citizen:"
            data-testid="audit-filter-subject"
          />
          <div>
            <button type="submit" data-testid="audit-filter-submit">
              Показать
            </button>{' '}
            <a href="/security-center">Сбросить</a>
          </div>
        </form>
        <table>
          <thead>
            <tr>
              <th>№</th>
              <th>Время (МСК)</th>
              <th>Кто</th>
              <th>Действие</th>
              <th>Объект</th>
              <th>Подробности</th>
            </tr>
          </thead>
          <tbody data-live-audit>
            {props.audit.map((e) => (
              <AuditTr e={e} />
            ))}
          </tbody>
        </table>
      </section>
      <script src={LIVE_SCRIPT_PATH} defer />
    </Layout>
  );
}
