import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { h } from 'preact';
import { Type } from 'typebox';
import type { Clock } from '../../platform/clock.js';
import { ForbiddenError } from '../../platform/http/errors.js';
import type { SessionStore } from '../../platform/http/session.store.js';
import { maskPhone } from '../../platform/login/login-routes.js';
import type { CitizenService } from '../citizens/citizen.service.js';
import type { CitizenSignedIn } from '../citizens/signed-in.js';
import type { AnomalyService } from './anomaly.service.js';
import type { AuditFeed, AuditFilter } from './audit-feed.store.js';
import {
  alertRow,
  auditRow,
  LIVE_SCRIPT_PATH,
  SecurityCenterPage,
  when,
} from './security-center-pages.js';

const LIVE_SCRIPT = readFileSync(
  new URL('./assets/security-center-live.js', import.meta.url),
  'utf8',
);

/** How often a live stream looks for new rows (any instance may have written them). */
export const STREAM_POLL_MS = 1_000;
/** A stream ends after this; EventSource reconnects and the session is checked afresh. */
export const STREAM_MAX_MS = 5 * 60_000;
const HEARTBEAT_MS = 15_000;
const SESSION_CHECK_MS = 10_000;

const Filter = {
  actor: Type.Optional(Type.String({ maxLength: 200 })),
  action: Type.Optional(Type.String({ maxLength: 200 })),
  subject: Type.Optional(Type.String({ maxLength: 200 })),
};
const Seq = Type.String({ pattern: '^[0-9]{1,19}$' });

export interface SecurityCenterDeps {
  anomaly: AnomalyService;
  auditFeed: AuditFeed;
  signedIn: CitizenSignedIn;
  sessions: Pick<SessionStore, 'find'>;
  citizens: Pick<CitizenService, 'personalData'>;
  partnerName: (clientId: string) => Promise<string>;
  clock: Clock;
  /** Tests shorten these. */
  pollMs?: number;
  maxStreamMs?: number;
}

/**
 * The security center (J11) for the `security` role: live alerts and audit log over
 * Server-Sent Events, the citizens whose login the anomaly rules blocked (with
 * «Разблокировать»), and a link to the IP blocks (blocks.routes.ts).
 */
export function registerSecurityCenterRoutes(app: FastifyInstance, deps: SecurityCenterDeps) {
  const pollMs = deps.pollMs ?? STREAM_POLL_MS;
  const maxStreamMs = deps.maxStreamMs ?? STREAM_MAX_MS;
  /** Open streams, ended when the app closes (a shutdown must not wait for a browser tab). */
  const streams = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of streams) end();
  });

  /** The signed-in security analyst, or a 403 for anyone else. */
  const analyst = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = await deps.signedIn(request, reply);
    if (!ctx) return undefined;
    if (!ctx.citizen.roles.includes('security')) {
      throw new ForbiddenError(
        'The security role is required.',
        'Этот раздел доступен только сотрудникам с соответствующей ролью.',
      );
    }
    return ctx;
  };

  const names = async (clientIds: (string | null)[]) => {
    const map = new Map<string, string>();
    for (const id of new Set(clientIds)) if (id) map.set(id, await deps.partnerName(id));
    return map;
  };

  /** «Иванов И. И. (+7 999 ***-**-01)»: enough to act on, no more. */
  const citizenLabel = async (citizenId: string) => {
    const found = await deps.citizens.personalData(citizenId);
    if (!found) return citizenId;
    const p = found.personal;
    const initials = [p.firstName, p.middleName]
      .filter(Boolean)
      .map((n) => `${n!.slice(0, 1)}.`)
      .join(' ');
    return `${p.lastName} ${initials} (${maskPhone(p.phone)})`;
  };

  const filterOf = (query: AuditFilter): AuditFilter => ({
    actor: query.actor?.trim() || undefined,
    action: query.action?.trim() || undefined,
    subject: query.subject?.trim() || undefined,
  });

  const page = async (request: FastifyRequest, reply: FastifyReply, notice?: string) => {
    const ctx = await analyst(request, reply);
    if (!ctx) return reply;
    const filter = filterOf(request.query as AuditFilter);
    // The stream starts where what the page shows ends.
    const [alertsAfter, auditAfter] = await Promise.all([
      deps.anomaly.lastAlertSeq(),
      deps.auditFeed.lastSeq(),
    ]);
    const alerts = await deps.anomaly.recentAlerts(50);
    const partners = await names(alerts.map((a) => a.clientId));
    const blocks = await Promise.all(
      (await deps.anomaly.activeBlocks()).map(async (b) => ({
        id: b.id,
        citizen: await citizenLabel(b.citizen_id),
        reason: b.explanation ? `${b.code}: ${b.explanation}` : 'заблокирован вручную',
        since: when(new Date(b.blocked_at)),
        until: when(new Date(b.blocked_until)),
      })),
    );
    const audit = await deps.auditFeed.latest(filter, 100);
    const streamUrl = `/security-center/stream?${new URLSearchParams({
      alerts_after: alertsAfter,
      audit_after: auditAfter,
      ...Object.fromEntries(Object.entries(filter).filter(([, v]) => v)),
    }).toString()}`;
    return reply.page(
      h(SecurityCenterPage, {
        chrome: ctx.chrome,
        csrf: ctx.csrf,
        alerts: alerts.map((a) => alertRow(a, a.clientId ? partners.get(a.clientId) : undefined)),
        blocks,
        audit: audit.map(auditRow),
        filter,
        streamUrl,
        notice,
      }),
    );
  };

  app.get(
    '/security-center',
    { schema: { hide: true, querystring: Type.Object(Filter) } },
    (request, reply) => page(request, reply),
  );

  app.post(
    '/security-center/sessions/:blockId/unblock',
    {
      schema: {
        hide: true,
        params: Type.Object({ blockId: Type.String({ format: 'uuid' }) }),
        body: Type.Object({ _csrf: Type.String({ maxLength: 128 }) }),
      },
    },
    async (request, reply) => {
      const ctx = await analyst(request, reply);
      if (!ctx) return reply;
      const lifted = await deps.anomaly.unblock(
        (request.params as { blockId: string }).blockId,
        ctx.citizenId,
      );
      return page(
        request,
        reply,
        lifted ? 'Вход разблокирован.' : 'Эта блокировка уже снята или истекла.',
      );
    },
  );

  app.get(LIVE_SCRIPT_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(LIVE_SCRIPT),
  );

  /**
   * Server-Sent Events: `alert` and `audit` events, each with id `<alert seq>.<audit seq>`
   * so a reconnect (Last-Event-ID) resumes where it stopped. Every instance polls the
   * tables (new rows from any instance appear within a second; works on PGlite too).
   */
  app.get(
    '/security-center/stream',
    {
      schema: {
        hide: true,
        querystring: Type.Object({
          ...Filter,
          alerts_after: Type.Optional(Seq),
          audit_after: Type.Optional(Seq),
        }),
      },
    },
    async (request, reply) => {
      const ctx = await analyst(request, reply);
      if (!ctx) return reply;
      const query = request.query as AuditFilter & { alerts_after?: string; audit_after?: string };
      const filter = filterOf(query);
      const resumed = /^(\d{1,19})\.(\d{1,19})$/.exec(
        String(request.headers['last-event-id'] ?? ''),
      );
      let alertsAfter = resumed?.[1] ?? query.alerts_after ?? (await deps.anomaly.lastAlertSeq());
      let auditAfter = resumed?.[2] ?? query.audit_after ?? (await deps.auditFeed.lastSeq());
      const sessionId = request.session.current!.id;

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 3000\n\n`);
      let open = true;
      let wake: (() => void) | undefined;
      const stop = () => {
        open = false;
        wake?.();
      };
      streams.add(stop);
      res.on('close', stop);
      const send = (event: string, data: unknown) =>
        res.write(
          `id: ${alertsAfter}.${auditAfter}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
        );

      const started = Date.now();
      let lastBeat = started;
      let lastSessionCheck = started;
      try {
        while (open && Date.now() - started < maxStreamMs) {
          const alerts = await deps.anomaly.alertsAfter(alertsAfter, 50);
          const partners = await names(alerts.map((a) => a.clientId));
          for (const a of alerts) {
            alertsAfter = a.seq;
            send('alert', alertRow(a, a.clientId ? partners.get(a.clientId) : undefined));
          }
          // With a filter, skip past what did not match so the next poll starts later.
          const filtered = Boolean(filter.actor || filter.action || filter.subject);
          const seen = filtered ? await deps.auditFeed.lastSeq() : undefined;
          const entries = await deps.auditFeed.after(auditAfter, filter, 200);
          for (const e of entries) {
            auditAfter = e.seq;
            send('audit', auditRow(e));
          }
          if (seen && entries.length < 200 && BigInt(seen) > BigInt(auditAfter)) auditAfter = seen;
          const now = Date.now();
          if (now - lastBeat >= HEARTBEAT_MS) {
            res.write(': ping\n\n');
            lastBeat = now;
          }
          if (now - lastSessionCheck >= SESSION_CHECK_MS) {
            lastSessionCheck = now;
            if (!(await deps.sessions.find(sessionId, deps.clock.now()))) break;
          }
          if (!open) break;
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, pollMs).unref();
          });
        }
      } catch (err) {
        request.log.warn({ err }, 'security center stream failed');
      } finally {
        streams.delete(stop);
        if (!res.writableEnded) res.end();
      }
      return reply;
    },
  );
}
