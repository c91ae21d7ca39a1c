import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The device cookie: a long-lived random identifier of one browser, HttpOnly (scripts
 * never see it), set when the browser logs in or enrols an authenticator app. The server
 * keeps only its SHA-256, so a database dump names no device. It lets the login flow tell
 * the device a TOTP app was enrolled on from any other (a new device must re-enrol,
 * confirmed by SMS) and the anomaly rules tell a new device from a known one.
 */
export interface DeviceCookieOptions {
  /** e.g. `portal_device`; `__Host-` prefixed when `secure`. */
  cookieName: string;
  secure: boolean;
}

/** Browsers cap cookie lifetimes at 400 days (RFC 6265bis); ask for that. */
const DEVICE_COOKIE_MAX_AGE_S = 400 * 24 * 60 * 60;
const DEVICE_ID = /^[A-Za-z0-9_-]{43}$/;

export function deviceCookieName(service: string, secure: boolean): string {
  return secure ? `__Host-${service}_device` : `${service}_device`;
}

/** The device id the browser presented, if well-formed. */
export function readDeviceId(request: FastifyRequest, opts: DeviceCookieOptions) {
  const value = request.cookies[opts.cookieName];
  return value && DEVICE_ID.test(value) ? value : undefined;
}

/** What the server stores about a device: never the cookie value itself. */
export function deviceHash(deviceId: string): string {
  return createHash('sha256').update(`device:${deviceId}`).digest('hex');
}

/** Ids minted during a request that came without one: asked twice, the same answer. */
const minted = new WeakMap<FastifyRequest, string>();

/** The browser's device id; a new one (and its cookie) when it has none. */
export function ensureDeviceId(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: DeviceCookieOptions,
): string {
  const existing = readDeviceId(request, opts) ?? minted.get(request);
  if (existing) return existing;
  const id = randomBytes(32).toString('base64url');
  minted.set(request, id);
  reply.setCookie(opts.cookieName, id, {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: opts.secure,
    maxAge: DEVICE_COOKIE_MAX_AGE_S,
  });
  return id;
}
