import type { FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Clock } from '../../platform/clock.js';
import type { ClientIpResolver } from '../../platform/http/client-ip.js';
import { AppError } from '../../platform/http/errors.js';
import type { WindowCounters } from '../../platform/limits/window-counters.js';
import { peerCertificateOf } from '../../platform/mtls/index.js';
import type { PartnerTable } from '../partners/partner.store.js';
import type { IpBlockService } from '../security/ip-block.service.js';

/**
 * The partner API's first check, before any handler (token endpoint, data API, all):
 *
 * 1. the source IP (the socket, or X-Forwarded-For through trusted proxies only) is not
 *    blocked — else 403 IP_BLOCKED;
 * 2. the caller is told apart by its client certificate's thumbprint, taken from the TLS
 *    socket (once per connection) and mapped to its partner through a short cache: no
 *    token is parsed or verified yet, so a flood costs little;
 * 3. one request is counted against the partner's own limit (`partners.rate_limit`, or
 *    the configured default) in the counter store every instance shares, with a small
 *    burst allowance (`burstPercent` of the limit within ten windows) so that a partner
 *    sending just under its limit is not refused for jitter — beyond it 429 RATE_LIMITED
 *    with Retry-After, and the refusal counts towards blocking the source IP.
 *
 * Each partner has its own counter, so one partner's flood never spends another's
 * allowance; a caller without a certificate (possible only in tests) is counted by IP.
 */
export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number) {
    super(
      'RATE_LIMITED',
      429,
      `Too many requests for this partner; retry in ${retryAfterSeconds} s.`,
      'Слишком много запросов. Повторите попытку позже.',
      { 'retry-after': String(retryAfterSeconds) },
    );
  }
}

export class IpBlockedError extends AppError {
  constructor(until: Date, now: Date) {
    const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
    super(
      'IP_BLOCKED',
      403,
      `Requests from this IP address are blocked until ${until.toISOString()} after sustained excess over the rate limit.`,
      'Запросы с этого адреса временно заблокированы из-за превышения лимита.',
      { 'retry-after': String(seconds) },
    );
  }
}

export interface PartnerRateLimitDeps {
  resolveIp: ClientIpResolver;
  blocks: Pick<IpBlockService, 'active' | 'recordRefusal'>;
  /** Per-partner request counters, in windows of the configured length. */
  counters: Pick<WindowCounters, 'take'>;
  partners: { byThumbprint(thumbprint: string): Promise<PartnerTable | undefined> };
  /** Requests per window for a partner without its own limit. */
  defaultLimit: number;
  /** Extra requests within ten windows, in percent of the limit (0: none). */
  burstPercent: number;
  clock: Clock;
  /** How long a thumbprint → partner answer is kept; default 10 s. */
  partnerCacheMs?: number;
}

interface Caller {
  key: string;
  clientId?: string | undefined;
  limit: number;
}

const CACHE_MAX = 10_000;

export function createPartnerRateLimit(deps: PartnerRateLimitDeps) {
  const cacheMs = deps.partnerCacheMs ?? 10_000;
  const thumbprints = new WeakMap<Socket, string | null>();
  const partners = new Map<string, { at: number; partner: Promise<PartnerTable | undefined> }>();

  const partnerOf = (thumbprint: string): Promise<PartnerTable | undefined> => {
    const cached = partners.get(thumbprint);
    if (cached && performance.now() - cached.at < cacheMs) return cached.partner;
    if (partners.size >= CACHE_MAX) partners.clear();
    const partner = deps.partners.byThumbprint(thumbprint);
    partners.set(thumbprint, { at: performance.now(), partner });
    partner.catch(() => partners.delete(thumbprint));
    return partner;
  };

  async function callerOf(socket: Socket, ip: string): Promise<Caller> {
    let thumbprint = thumbprints.get(socket);
    if (thumbprint === undefined) {
      thumbprint = peerCertificateOf(socket)?.thumbprint ?? null;
      thumbprints.set(socket, thumbprint);
    }
    if (!thumbprint) return { key: `ip:${ip}`, limit: deps.defaultLimit };
    const partner = await partnerOf(thumbprint);
    if (!partner) return { key: `cert:${thumbprint}`, limit: deps.defaultLimit };
    return {
      key: `partner:${partner.client_id}`,
      clientId: partner.client_id,
      limit: partner.rate_limit ?? deps.defaultLimit,
    };
  }

  /** The onRequest check; throws IpBlockedError or RateLimitedError. */
  return async function guard(request: FastifyRequest): Promise<void> {
    const socket = request.raw.socket;
    const ip =
      deps.resolveIp(socket.remoteAddress, request.headers['x-forwarded-for']) ?? 'unknown';
    const blocked = await deps.blocks.active(ip);
    if (blocked) throw new IpBlockedError(blocked.until, deps.clock.now());

    const caller = await callerOf(socket, ip);
    const burst = Math.ceil((caller.limit * deps.burstPercent) / 100);
    const take = await deps.counters.take(caller.key, caller.limit, burst);
    if (take.allowed) return;

    const nowBlocked = await deps.blocks.recordRefusal(ip, caller.clientId);
    if (nowBlocked) {
      request.log.warn(
        { block: nowBlocked.id, client: caller.clientId },
        'source IP blocked after sustained excess over the rate limit',
      );
      throw new IpBlockedError(nowBlocked.until, deps.clock.now());
    }
    throw new RateLimitedError(Math.max(1, Math.ceil(take.retryAfterMs / 1000)));
  };
}
