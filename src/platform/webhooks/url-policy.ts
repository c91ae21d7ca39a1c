import { BlockList, isIP } from 'node:net';
import { WebhookError } from './errors.js';

/**
 * Where webhooks may be sent. A partner gives us a URL and we POST to it from inside our
 * network, so an unchecked URL is a server-side request forgery: `http://169.254.169.254/`
 * (cloud metadata), `http://localhost:5432/`, an admin port on the loopback interface.
 *
 * Without `allowPrivateUrls` (which only demo and test set) a URL must be https and must
 * not name a loopback, private, link-local, unique-local, shared, multicast or otherwise
 * non-public IP literal, `localhost` (or `*.localhost`, RFC 6761), or a single-label name
 * (resolved through search domains, usually to an internal host).
 *
 * This checks what the URL says, not where its name resolves: no DNS lookups here. A
 * public name can resolve (or later re-resolve: DNS rebinding) to a private address, so
 * production still needs egress controls that keep the delivery worker away from internal
 * networks (a forward proxy or firewall rules that allow only public destinations).
 */
export interface UrlPolicy {
  allowPrivateUrls: boolean;
}

export const MAX_URL_LENGTH = 2_000;

const nonPublic = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['10.0.0.0', 8], // private (RFC 1918)
  ['100.64.0.0', 10], // shared address space, carrier-grade NAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12], // private (RFC 1918)
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.168.0.0', 16], // private (RFC 1918)
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback ::1, deprecated IPv4-compatible addresses
  // IPv4-mapped ::ffff:0:0/96 needs no entry: BlockList matches those against the IPv4 rules.
  ['64:ff9b::', 96], // NAT64: a translated IPv4 address, possibly a private one
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  nonPublic.addSubnet(network, prefix, 'ipv6');
}

function refuse(message: string): never {
  throw new WebhookError('ERR_WEBHOOK_URL', message);
}

/** Returns the parsed URL, or throws WebhookError ERR_WEBHOOK_URL saying what is wrong. */
export function checkEndpointUrl(raw: string, policy: UrlPolicy): URL {
  if (typeof raw !== 'string' || raw.trim() === '') refuse('The webhook URL is empty.');
  if (raw.length > MAX_URL_LENGTH)
    refuse(`The webhook URL is longer than ${MAX_URL_LENGTH} characters.`);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    refuse('The webhook URL is not a valid absolute URL.');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    refuse(`The webhook URL must use https (got ${url.protocol}).`);
  if (url.username !== '' || url.password !== '')
    refuse('The webhook URL must not contain a user name or password.');
  if (policy.allowPrivateUrls) return url;

  if (url.protocol !== 'https:') refuse('The webhook URL must use https.');
  // URL has already normalised the host: lower case, IPv4 in dotted decimal (0x7f.1 and
  // 2130706433 become 127.0.0.1), IPv6 compressed and in brackets.
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const family = isIP(host);
  if (family !== 0) {
    if (nonPublic.check(host, family === 4 ? 'ipv4' : 'ipv6'))
      refuse(
        `The webhook URL points at ${host}, a loopback, private, link-local or otherwise ` +
          'non-public address. Use a public address.',
      );
    return url;
  }
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name === 'localhost' || name.endsWith('.localhost'))
    refuse('The webhook URL points at localhost. Use a public address.');
  if (!name.includes('.'))
    refuse(`The webhook URL's host "${name}" is not a fully qualified domain name.`);
  return url;
}
