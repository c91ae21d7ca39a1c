/* global document, EventSource, setTimeout */
/**
 * Keeps the security center live: new alerts and audit entries arrive as Server-Sent
 * Events from the URL in data-security-live and are put at the top of their tables.
 * Served by the portal from its own origin (CSP script-src 'self'); every value is set
 * with textContent, never as HTML. Without it the page works, only not live.
 *
 * The stream closes every few minutes and EventSource reconnects with Last-Event-ID, so
 * the server checks the session each time. After 25 min the script stops (an open tab
 * must not keep the session alive for ever) and says so.
 */
(() => {
  'use strict';
  const status = document.querySelector('[data-security-live]');
  if (!status || typeof EventSource === 'undefined') return;
  const alerts = document.querySelector('[data-live-alerts]');
  const audit = document.querySelector('[data-live-audit]');
  const MAX_ROWS = 300;
  const STOP_AFTER_MS = 25 * 60 * 1000;

  const cell = (text, opts = {}) => {
    const td = document.createElement('td');
    if (opts.hint) td.className = 'hint';
    const inner = opts.code ? document.createElement('code') : td;
    inner.textContent = text ?? '';
    if (opts.code) td.appendChild(inner);
    return td;
  };

  const prepend = (body, row) => {
    body.insertBefore(row, body.firstChild);
    while (body.children.length > MAX_ROWS) body.removeChild(body.lastChild);
  };

  const alertRow = (a) => {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'security-alert');
    tr.setAttribute('data-alert-code', a.code);
    tr.className = `severity-${a.severity} live-new`;
    tr.appendChild(cell(a.at));
    const rule = cell(a.rule);
    rule.appendChild(document.createElement('br'));
    const code = document.createElement('code');
    code.textContent = a.code;
    rule.appendChild(code);
    tr.appendChild(rule);
    tr.appendChild(cell(a.severityLabel));
    tr.appendChild(cell(a.explanation));
    tr.appendChild(cell(a.actions));
    tr.appendChild(cell(a.objects, { hint: true }));
    return tr;
  };

  const auditRow = (e) => {
    const tr = document.createElement('tr');
    tr.setAttribute('data-testid', 'audit-entry');
    tr.className = 'live-new';
    tr.appendChild(cell(e.seq));
    tr.appendChild(cell(e.at));
    tr.appendChild(cell(e.actor, { code: true }));
    tr.appendChild(cell(e.action, { code: true }));
    tr.appendChild(cell(e.subject, { code: true }));
    tr.appendChild(cell(e.details, { hint: true, code: true }));
    return tr;
  };

  const source = new EventSource(status.getAttribute('data-security-live'));
  const parse = (event) => {
    try {
      return JSON.parse(event.data);
    } catch {
      return undefined;
    }
  };
  source.addEventListener('alert', (event) => {
    const a = parse(event);
    if (!a || !alerts) return;
    const empty = document.querySelector('[data-live-alerts-empty]');
    if (empty) empty.remove();
    prepend(alerts, alertRow(a));
  });
  source.addEventListener('audit', (event) => {
    const e = parse(event);
    if (e && audit) prepend(audit, auditRow(e));
  });
  source.addEventListener('open', () => {
    status.textContent = 'Оповещения и журнал аудита обновляются сами.';
  });
  source.addEventListener('error', () => {
    status.textContent = 'Связь прервалась, переподключаемся…';
  });
  setTimeout(() => {
    source.close();
    status.textContent = 'Обновление остановлено. Обновите страницу, чтобы продолжить.';
  }, STOP_AFTER_MS);
})();
