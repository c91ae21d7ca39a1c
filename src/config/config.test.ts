import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const problemsOf = (env: Record<string, string>, defaults = {}) => {
  try {
    loadConfig(env, defaults);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('loadConfig', () => {
  it('gives the addresses of CONTRACT.md by default', () => {
    const config = loadConfig({}, { mode: 'demo' });
    expect(config.portal.httpPort).toBe(3000);
    expect(config.portal.mtlsPort).toBe(3443);
    expect(config.bank.httpPort).toBe(4000);
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.portal.databaseUrl).toBeUndefined();
    expect(config.portal.publicUrl).toBe('http://localhost:3000');
    expect(config.demo).toBe(true);
    expect(config.host).toBe('127.0.0.1');
  });

  it('reads every setting from the environment', () => {
    const config = loadConfig({
      SOGLASIE_MODE: 'demo',
      PORTAL_HTTP_PORT: '3100',
      PORTAL_MTLS_PORT: '3543',
      BANK_HTTP_PORT: '4100',
      SOGLASIE_DATA_DIR: '/tmp/x',
      PORTAL_DATABASE_URL: 'postgres://u@db/portal',
      BANK_DATABASE_URL: 'postgresql://u@db/bank',
      REDIS_URL: 'redis://127.0.0.1:6379',
      LOG_LEVEL: 'debug',
      TRUSTED_PROXIES: '10.0.0.1, 10.0.0.2',
    });
    expect(config).toMatchObject({
      portal: { httpPort: 3100, mtlsPort: 3543, databaseUrl: 'postgres://u@db/portal' },
      bank: { httpPort: 4100, databaseUrl: 'postgresql://u@db/bank' },
      dataDir: '/tmp/x',
      redisUrl: 'redis://127.0.0.1:6379',
      logLevel: 'debug',
      trustedProxies: ['10.0.0.1', '10.0.0.2'],
    });
  });

  it('reads the partner API rate limits, 100 requests/s by default', () => {
    expect(loadConfig({}, { mode: 'demo' }).partnerRateLimit).toEqual({
      requests: 100,
      windowSeconds: 1,
      burstPercent: 10,
      blockAfter: 600,
      blockWindowSeconds: 60,
      blockSeconds: 900,
      keyPrefix: 'soglasie',
    });
    const config = loadConfig(
      {
        PARTNER_RATE_LIMIT: '10',
        PARTNER_RATE_WINDOW: '60',
        PARTNER_RATE_BURST: '0',
        PARTNER_BLOCK_AFTER: '5',
        PARTNER_BLOCK_WINDOW: '30',
        PARTNER_BLOCK_DURATION: '120',
        RATE_LIMIT_KEY_PREFIX: 'test-1:a',
      },
      { mode: 'demo' },
    );
    expect(config.partnerRateLimit).toEqual({
      requests: 10,
      windowSeconds: 60,
      burstPercent: 0,
      blockAfter: 5,
      blockWindowSeconds: 30,
      blockSeconds: 120,
      keyPrefix: 'test-1:a',
    });
    const problems = problemsOf(
      {
        PARTNER_RATE_LIMIT: '0',
        PARTNER_RATE_WINDOW: '1.5',
        PARTNER_RATE_BURST: '101',
        RATE_LIMIT_KEY_PREFIX: 'a b',
      },
      { mode: 'demo' },
    );
    expect(problems).toEqual([
      expect.stringMatching(/^PARTNER_RATE_LIMIT must be a whole number from 1/),
      expect.stringMatching(/^PARTNER_RATE_WINDOW must be a whole number from 1/),
      expect.stringMatching(/^PARTNER_RATE_BURST must be a whole number from 0 to 100/),
      expect.stringMatching(/^RATE_LIMIT_KEY_PREFIX may hold only/),
    ]);
  });

  it('reports every problem at once, in plain words', () => {
    const problems = problemsOf({
      SOGLASIE_MODE: 'demo',
      PORTAL_HTTP_PORT: '70000',
      BANK_HTTP_PORT: 'four',
      PORTAL_DATABASE_URL: 'mysql://x',
      REDIS_URL: 'not a url',
      LOG_LEVEL: 'loud',
    });
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/PORTAL_HTTP_PORT must be a port number/);
    expect(problems.join('\n')).toMatch(/BANK_HTTP_PORT must be a port number/);
    expect(problems.join('\n')).toMatch(/PORTAL_DATABASE_URL must start with postgres:\/\//);
    expect(problems.join('\n')).toMatch(/REDIS_URL is not a valid URL/);
    expect(problems.join('\n')).toMatch(/LOG_LEVEL must be one of/);
  });

  it('never repeats a database URL, which may hold a password', () => {
    const problems = problemsOf({
      SOGLASIE_MODE: 'demo',
      PORTAL_DATABASE_URL: 'mysql://u:hunter2@db/x',
    });
    expect(problems.join('\n')).not.toContain('hunter2');
  });

  it('refuses demo mode under NODE_ENV=production', () => {
    expect(problemsOf({ NODE_ENV: 'production', SOGLASIE_MODE: 'demo' }).join()).toMatch(
      /refused when NODE_ENV=production/,
    );
  });

  it('refuses one database shared by the portal and the bank, and clashing ports', () => {
    const problems = problemsOf({
      SOGLASIE_MODE: 'demo',
      PORTAL_DATABASE_URL: 'postgres://db/one',
      BANK_DATABASE_URL: 'postgres://db/one',
      BANK_HTTP_PORT: '3000',
    });
    expect(problems).toHaveLength(2);
  });

  it('asks for https public addresses in production, except for maintenance commands', () => {
    expect(problemsOf({}).join()).toMatch(/PORTAL_PUBLIC_URL must be an https/);
    expect(problemsOf({}, { serving: false })).toEqual([]);
    const config = loadConfig({
      PORTAL_PUBLIC_URL: 'https://portal.example/',
      BANK_PUBLIC_URL: 'https://bank.example',
    });
    expect(config.portal.publicUrl).toBe('https://portal.example');
    expect(config.demo).toBe(false);
    expect(config.host).toBe('0.0.0.0');
  });

  it('returns a frozen result', () => {
    const config = loadConfig({}, { mode: 'demo' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.portal)).toBe(true);
    expect(() => {
      (config.portal as { httpPort: number }).httpPort = 1;
    }).toThrow(TypeError);
  });
});
