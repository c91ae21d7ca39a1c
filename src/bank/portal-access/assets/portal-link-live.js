/* global document, location, fetch, setTimeout */
/**
 * Keeps the bank's «Связь с Госуслугами» status current (J5: the view changes on its own
 * within seconds when the portal ends the consent). Served by the bank from its own
 * origin (CSP script-src 'self'); the page works the same without it, only not live.
 *
 * The status element carries data-portal-live (the JSON to poll), data-portal-state
 * (the state the page was rendered with) and data-portal-then (the page to load when it
 * changes). Every 2 s, while the tab is visible, the script asks for the state; when it
 * differs it shows the new status and loads the page afresh (which shows the notice).
 */
(() => {
  'use strict';
  const el = document.querySelector('[data-portal-live]');
  if (!el) return;
  const url = el.getAttribute('data-portal-live');
  const known = el.getAttribute('data-portal-state');
  const then = el.getAttribute('data-portal-then') || location.pathname;
  const INTERVAL_MS = 2000;
  // Stop before the session's idle timeout (30 min): an open tab must not keep it alive.
  const STOP_AFTER_MS = 25 * 60 * 1000;
  const started = Date.now();

  const tick = async () => {
    if (Date.now() - started > STOP_AFTER_MS) return;
    if (!document.hidden) {
      try {
        const res = await fetch(url, {
          headers: { accept: 'application/json' },
          credentials: 'same-origin',
          cache: 'no-store',
        });
        if (res.status === 401 || res.status === 403) return; // logged out: nothing to follow
        if (res.ok) {
          const body = await res.json();
          if (typeof body.state === 'string' && body.state !== known) {
            if (typeof body.status === 'string') el.textContent = `${body.status}.`;
            location.replace(then);
            return;
          }
        }
      } catch {
        // The bank is briefly unreachable: try again at the next tick.
      }
    }
    setTimeout(tick, INTERVAL_MS);
  };
  setTimeout(tick, INTERVAL_MS);
})();
