import { BlockList, isIP } from 'node:net';

/**
 * The address of the client behind a request, for rate limits and IP blocks.
 *
 * The socket's peer is the only address nobody can forge. `X-Forwarded-For` is read only
 * when that peer is a configured trusted proxy (TRUSTED_PROXIES), and then from the right:
 * each trusted proxy appends the address it received the request from, so the list is
 * walked from its end, past our own proxies, to the first address we do not trust. That
 * one is the client; anything to its left was written by the client and may be invented
 * (the «rightmost untrusted» rule). A malformed entry stops the walk at the last hop we
 * can vouch for.
 */
export type ClientIpResolver = (
  /** `request.raw.socket.remoteAddress` */
  socketAddress: string | undefined,
  /** `request.headers['x-forwarded-for']` */
  forwardedFor: string | string[] | undefined,
) => string | undefined;

/** Shorthands accepted among the trusted proxies, besides addresses and CIDR ranges. */
const NAMED_RANGES: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
};

/**
 * Compiles the trusted proxies (addresses like `10.0.0.1` or `::1`, CIDR ranges like
 * `10.0.0.0/8` or `fd00::/8`, or `loopback`) once; throws on an entry it cannot read.
 */
export function createClientIpResolver(trustedProxies: readonly string[]): ClientIpResolver {
  const trusted = new BlockList();
  for (const raw of trustedProxies) {
    for (const entry of NAMED_RANGES[raw.trim().toLowerCase()] ?? [raw.trim()]) {
      addTrusted(trusted, entry);
    }
  }
  const isTrusted = (address: string) =>
    trustedProxies.length > 0 && trusted.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');

  return (socketAddress, forwardedFor) => {
    let hop = normalizeAddress(socketAddress);
    if (!hop || !isTrusted(hop)) return hop;
    const chain = forwardedEntries(forwardedFor);
    for (let i = chain.length - 1; i >= 0; i--) {
      const address = normalizeAddress(chain[i]);
      if (!address) return hop;
      if (!isTrusted(address)) return address;
      hop = address;
    }
    return hop;
  };
}

function addTrusted(list: BlockList, entry: string): void {
  const [address, prefix, extra] = entry.split('/');
  const normalized = normalizeAddress(address);
  const family = normalized ? isIP(normalized) : 0;
  if (!normalized || extra !== undefined || family === 0) {
    throw new Error(
      `TRUSTED_PROXIES: "${entry}" is not an IP address, a CIDR range or "loopback".`,
    );
  }
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (prefix === undefined) {
    list.addAddress(normalized, type);
    return;
  }
  const bits = Number(prefix);
  if (!/^\d+$/.test(prefix) || bits > (family === 6 ? 128 : 32)) {
    throw new Error(`TRUSTED_PROXIES: "${entry}" has an invalid prefix length.`);
  }
  list.addSubnet(normalized, bits, type);
}

/** Every X-Forwarded-For entry, left to right, over repeated headers too. */
function forwardedEntries(header: string | string[] | undefined): string[] {
  if (header === undefined) return [];
  return (Array.isArray(header) ? header : [header])
    .flatMap((h) => h.split(','))
    .map((s) => s.trim());
}

/**
 * A bare IP address, or undefined: IPv4-mapped IPv6 (`::ffff:10.0.0.1`) becomes IPv4, a
 * port some proxies add (`10.0.0.1:5000`, `[2001:db8::1]:443`) goes, zone ids stay out.
 */
export function normalizeAddress(value: string | undefined): string | undefined {
  if (!value) return undefined;
  let s = value.trim();
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s);
  if (bracketed) s = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(s)) s = s.slice(0, s.lastIndexOf(':'));
  const mapped = /^::ffff:(\d{1,3}(\.\d{1,3}){3})$/i.exec(s);
  if (mapped) s = mapped[1]!;
  const family = isIP(s);
  if (family === 0 || s.includes('%')) return undefined;
  return family === 6 ? s.toLowerCase() : s;
}
