import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testPortal } from '../../../test/support/services.js';

describe('shared HTTP behaviour (on the portal app)', () => {
  let svc: Awaited<ReturnType<typeof testPortal>>;
  beforeEach(async () => {
    svc = await testPortal({ name: 'pglite' });
  });
  afterEach(async () => {
    await svc.close();
  });

  it('answers /healthz 200 while the database is up and 503 when it is gone', async () => {
    const up = await svc.app.inject('/healthz');
    expect(up.statusCode).toBe(200);
    expect(up.json()).toMatchObject({ status: 'ok', service: 'portal' });
    await svc.runtime.database.close();
    const down = await svc.app.inject('/healthz');
    expect(down.statusCode).toBe(503);
    expect(down.headers['content-type']).toContain('application/problem+json');
    expect(down.json()).toMatchObject({ code: 'UNHEALTHY' });
  });

  it('gives API clients problem+json with a stable code, and browsers a Russian page', async () => {
    const api = await svc.app.inject({
      url: '/no-such-thing',
      headers: { accept: 'application/json' },
    });
    expect(api.statusCode).toBe(404);
    expect(api.headers['content-type']).toContain('application/problem+json');
    expect(api.json()).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const page = await svc.app.inject({ url: '/no-such-thing', headers: { accept: 'text/html' } });
    expect(page.body).toContain('Такой страницы нет.');
  });

  it('sets a strict CSP that forbids framing, and a request id', async () => {
    const res = await svc.app.inject({ url: '/login', headers: { accept: 'text/html' } });
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Lax');
  });

  it('exposes Prometheus metrics and the OpenAPI document', async () => {
    await svc.app.inject('/healthz');
    const metrics = await svc.app.inject('/metrics');
    expect(metrics.body).toContain(
      'http_requests_total{method="GET",route="/healthz",status="200"',
    );
    const openapi = await svc.app.inject('/openapi.json');
    expect(openapi.json()).toMatchObject({ openapi: expect.stringMatching(/^3\./) });
  });

  it('answers malformed JSON with a problem, not a stack trace', async () => {
    await svc.app.inject('/login');
    const res = await svc.app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'MALFORMED_BODY' });
    expect(res.body).not.toContain('SyntaxError');
  });
});
