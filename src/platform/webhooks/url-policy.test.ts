import { describe, expect, it } from 'vitest';
import { WebhookError } from './errors.js';
import { checkEndpointUrl } from './url-policy.js';

const strict = { allowPrivateUrls: false };
const relaxed = { allowPrivateUrls: true };

function refusal(url: string, policy = strict): WebhookError | undefined {
  try {
    checkEndpointUrl(url, policy);
    return undefined;
  } catch (err) {
    if (err instanceof WebhookError) return err;
    throw err;
  }
}

describe('webhook URL policy', () => {
  it.each([
    ['plain http', 'http://hooks.example.com/x'],
    ['another scheme', 'ftp://hooks.example.com/x'],
    ['a file', 'file:///etc/passwd'],
    ['javascript', 'javascript:alert(1)'],
    ['not a URL', 'hooks.example.com/x'],
    ['credentials', 'https://user:secret@hooks.example.com/x'],
    ['localhost', 'https://localhost/x'],
    ['localhost with a dot', 'https://LOCALHOST./x'],
    ['a .localhost name', 'https://bank.localhost/x'],
    ['a single-label name', 'https://intranet/x'],
    ['loopback', 'https://127.0.0.1/x'],
    ['loopback, hex shorthand', 'https://0x7f.1/x'],
    ['loopback, one integer', 'https://2130706433/x'],
    ['this host', 'https://0.0.0.0/x'],
    ['10/8', 'https://10.20.30.40/x'],
    ['172.16/12', 'https://172.31.255.1/x'],
    ['192.168/16', 'https://192.168.1.1/x'],
    ['link-local (cloud metadata)', 'https://169.254.169.254/latest/meta-data'],
    ['carrier-grade NAT', 'https://100.64.0.1/x'],
    ['multicast', 'https://224.0.0.1/x'],
    ['IPv6 loopback', 'https://[::1]/x'],
    ['IPv6 unspecified', 'https://[::]/x'],
    ['IPv4-mapped loopback', 'https://[::ffff:127.0.0.1]/x'],
    ['IPv4-mapped private', 'https://[::ffff:10.0.0.1]/x'],
    ['NAT64 of a private address', 'https://[64:ff9b::10.0.0.1]/x'],
    ['unique local fc00::/7', 'https://[fc00::1]/x'],
    ['unique local fd..', 'https://[fd12:3456::1]/x'],
    ['IPv6 link-local', 'https://[fe80::1]/x'],
  ])('refuses %s', (_what, url) => {
    expect(refusal(url)?.code).toBe('ERR_WEBHOOK_URL');
  });

  it.each([
    'https://hooks.example.com/soglasie',
    'https://hooks.example.com:8443/a/b?c=d',
    'https://bank.example.ru./webhooks',
    'https://93.184.215.14/hook',
    'https://[2a00:1450:4010:c05::64]/hook',
  ])('accepts %s', (url) => {
    expect(refusal(url)).toBeUndefined();
  });

  it('says what is wrong, in a stable code and status', () => {
    const err = refusal('https://192.168.0.10/x');
    expect(err).toMatchObject({ code: 'ERR_WEBHOOK_URL', status: 400 });
    expect(err?.message).toMatch(/192\.168\.0\.10.*non-public/);
    expect(refusal('http://hooks.example.com/')?.message).toMatch(/https/);
  });

  it('with allowPrivateUrls (demo, tests) takes http and loopback, but still only http(s)', () => {
    expect(refusal('http://127.0.0.1:8080/hook', relaxed)).toBeUndefined();
    expect(refusal('http://localhost:8080/hook', relaxed)).toBeUndefined();
    expect(refusal('file:///etc/passwd', relaxed)?.code).toBe('ERR_WEBHOOK_URL');
    expect(refusal('http://u:p@127.0.0.1/', relaxed)?.code).toBe('ERR_WEBHOOK_URL');
  });
});
