import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../clock.js';
import { CsrfError } from './errors.js';
import type { SessionRecord, SessionStore } from './session.store.js';

export interface SessionOptions {
  store: SessionStore;
  clock: Clock;
  /** Cookie name; the portal and the bank differ because cookies ignore ports. */
  cookieName: string;
  /** `Secure` cookies: on everywhere except demo and test over plain HTTP. */
  secure: boolean;
  /** Idle timeout; each request moves expiry forward up to `absoluteTtlMs`. */
  idleTtlMs?: number;
  absoluteTtlMs?: number;
}

const DEFAULT_IDLE_MS = 30 * 60_000;
const DEFAULT_ABSOLUTE_MS = 12 * 60 * 60_000;
/** Sliding expiry is written at most once a minute, not on every request. */
const REFRESH_GRANULARITY_MS = 60_000;

declare module 'fastify' {
  interface FastifyRequest {
    session: SessionHandle;
  }
  interface FastifyContextConfig {
    /** Unsafe methods check the CSRF token unless a route opts out (token-authenticated APIs). */
    csrf?: boolean;
  }
}

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** The session of one request: loaded lazily from the cookie, created only when needed. */
export class SessionHandle {
  #record: SessionRecord | null = null;

  constructor(
    private readonly opts: Required<SessionOptions>,
    private readonly reply: FastifyReply,
    record: SessionRecord | null,
  ) {
    this.#record = record;
  }

  get current(): SessionRecord | null {
    return this.#record;
  }

  get userId(): string | null {
    return this.#record?.userId ?? null;
  }

  get data(): Readonly<Record<string, unknown>> {
    return this.#record?.data ?? {};
  }

  /** Returns the session, starting an anonymous one (with a CSRF token) if there is none. */
  async ensure(): Promise<SessionRecord> {
    return this.#record ?? (await this.#start(null, {}));
  }

  async csrfToken(): Promise<string> {
    return (await this.ensure()).csrfToken;
  }

  /** Merges `patch` into the session data; keys set to undefined are removed. */
  async setData(patch: Record<string, unknown>): Promise<void> {
    const record = await this.ensure();
    const data = { ...record.data };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete data[k];
      else data[k] = v;
    }
    await this.opts.store.update(record.id, { data });
    record.data = data;
  }

  /**
   * Starts a fresh session for a user who has just proved who they are. A new token
   * and CSRF secret replace the old ones, so a session fixed before login is useless.
   */
  async regenerate(userId: string | null, data: Record<string, unknown>): Promise<SessionRecord> {
    if (this.#record) await this.opts.store.delete(this.#record.id);
    return this.#start(userId, data);
  }

  async destroy(): Promise<void> {
    if (this.#record) await this.opts.store.delete(this.#record.id);
    this.#record = null;
    this.reply.clearCookie(this.opts.cookieName, { path: '/' });
  }

  async #start(userId: string | null, data: Record<string, unknown>): Promise<SessionRecord> {
    const token = randomBytes(32).toString('base64url');
    const now = this.opts.clock.now();
    const record: SessionRecord = {
      id: hashToken(token),
      csrfToken: randomBytes(32).toString('base64url'),
      userId,
      data,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.opts.idleTtlMs),
    };
    await this.opts.store.insert(record);
    this.#record = record;
    this.reply.setCookie(this.opts.cookieName, token, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: this.opts.secure,
    });
    return record;
  }
}

export function installSessions(app: FastifyInstance, options: SessionOptions): void {
  const opts: Required<SessionOptions> = {
    idleTtlMs: DEFAULT_IDLE_MS,
    absoluteTtlMs: DEFAULT_ABSOLUTE_MS,
    ...options,
  };

  app.decorateRequest('session', null as unknown as SessionHandle);

  app.addHook('onRequest', async (request, reply) => {
    const token = request.cookies[opts.cookieName];
    let record: SessionRecord | null = null;
    if (token && token.length <= 128) {
      const now = opts.clock.now();
      record = (await opts.store.find(hashToken(token), now)) ?? null;
      if (record) {
        const deadline = record.createdAt.getTime() + opts.absoluteTtlMs;
        const next = new Date(Math.min(deadline, now.getTime() + opts.idleTtlMs));
        if (next.getTime() - record.expiresAt.getTime() >= REFRESH_GRANULARITY_MS) {
          await opts.store.update(record.id, { expiresAt: next });
          record.expiresAt = next;
        }
      }
    }
    request.session = new SessionHandle(opts, reply, record);
  });

  // Synchronizer-token CSRF check. It runs after the body is parsed, so form fields count.
  app.addHook('preValidation', async (request: FastifyRequest) => {
    if (!UNSAFE_METHODS.has(request.method)) return;
    if (request.routeOptions.config?.csrf === false) return;
    const expected = request.session.current?.csrfToken;
    const body = request.body as Record<string, unknown> | undefined;
    const header = request.headers['x-csrf-token'];
    const given =
      (typeof body?._csrf === 'string' ? body._csrf : undefined) ??
      (typeof header === 'string' ? header : undefined);
    if (!expected || !given || !safeEqual(expected, given)) throw new CsrfError();
  });
}

const UNSAFE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}
