import { describe, expect, it } from 'vitest';
import { createClientIpResolver, normalizeAddress } from './client-ip.js';

describe('client IP', () => {
  it('is the socket address when no proxy is trusted, whatever X-Forwarded-For says', () => {
    const ip = createClientIpResolver([]);
    expect(ip('203.0.113.7', undefined)).toBe('203.0.113.7');
    expect(ip('203.0.113.7', '198.51.100.1')).toBe('203.0.113.7');
    expect(ip('::ffff:203.0.113.7', '198.51.100.1, 10.0.0.1')).toBe('203.0.113.7');
  });

  it('ignores a spoofed X-Forwarded-For from a hop that is not a trusted proxy', () => {
    const ip = createClientIpResolver(['10.0.0.1']);
    // A partner's server connects directly and claims to be someone else.
    expect(ip('203.0.113.7', '198.51.100.1')).toBe('203.0.113.7');
    expect(ip('203.0.113.7', ['198.51.100.1', '10.0.0.1'])).toBe('203.0.113.7');
  });

  it('takes the address the trusted proxy saw: the rightmost entry', () => {
    const ip = createClientIpResolver(['10.0.0.1']);
    expect(ip('10.0.0.1', '203.0.113.7')).toBe('203.0.113.7');
    // The client put a fake address in front; the proxy appended the real one.
    expect(ip('10.0.0.1', '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    // Behind the proxy with no header: the proxy itself.
    expect(ip('10.0.0.1', undefined)).toBe('10.0.0.1');
    expect(ip('10.0.0.1', '')).toBe('10.0.0.1');
  });

  it('walks a chain of trusted proxies to the rightmost untrusted address', () => {
    const ip = createClientIpResolver(['10.0.0.0/8', '192.168.1.5']);
    // client → 10.1.1.1 (edge) → 192.168.1.5 → 10.0.0.1 (the hop we see)
    const header = '198.51.100.1, 203.0.113.7, 10.1.1.1, 192.168.1.5';
    expect(ip('10.0.0.1', header)).toBe('203.0.113.7');
    // The same over repeated headers (node may give an array).
    expect(ip('10.0.0.1', ['198.51.100.1, 203.0.113.7', '10.1.1.1', '192.168.1.5'])).toBe(
      '203.0.113.7',
    );
    // Every entry is ours: the leftmost is as far as we can see.
    expect(ip('10.0.0.1', '10.9.9.9, 10.1.1.1')).toBe('10.9.9.9');
  });

  it('stops at the last hop it can vouch for when an entry is malformed', () => {
    const ip = createClientIpResolver(['10.0.0.0/8']);
    expect(ip('10.0.0.1', '203.0.113.7, not-an-ip, 10.1.1.1')).toBe('10.1.1.1');
    expect(ip('10.0.0.1', 'unknown')).toBe('10.0.0.1');
    expect(ip('10.0.0.1', '203.0.113.7, ')).toBe('10.0.0.1');
  });

  it('handles IPv6, mapped IPv4, ports and the loopback shorthand', () => {
    const ip = createClientIpResolver(['loopback', 'fd00::/8']);
    expect(ip('::1', '2001:DB8::1')).toBe('2001:db8::1');
    expect(ip('127.0.0.1', '[2001:db8::2]:443')).toBe('2001:db8::2');
    expect(ip('::ffff:127.0.0.1', '203.0.113.7:5000')).toBe('203.0.113.7');
    expect(ip('fd00::5', '::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(ip(undefined, '203.0.113.7')).toBeUndefined();
  });

  it('refuses a trusted-proxy entry it cannot read', () => {
    expect(() => createClientIpResolver(['10.0.0.300'])).toThrow(/TRUSTED_PROXIES: "10.0.0.300"/);
    expect(() => createClientIpResolver(['10.0.0.0/33'])).toThrow(/invalid prefix/);
    expect(() => createClientIpResolver(['proxy.example'])).toThrow(/not an IP address/);
  });

  it('normalizes addresses', () => {
    expect(normalizeAddress(' 203.0.113.7 ')).toBe('203.0.113.7');
    expect(normalizeAddress('fe80::1%eth0')).toBeUndefined();
    expect(normalizeAddress('1.2.3')).toBeUndefined();
    expect(normalizeAddress(undefined)).toBeUndefined();
  });
});
