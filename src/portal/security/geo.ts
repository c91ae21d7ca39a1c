import { createRequire } from 'node:module';
import { BlockList, isIP } from 'node:net';
import maxmind, { type Reader, type Response } from 'maxmind';

/**
 * The country of an IP address from an offline database: `@ip-location-db/geo-whois-asn-
 * country-mmdb` (country from WHOIS and ASN data; NRO, CC BY 4.0), read with `maxmind`.
 * Nothing leaves the machine. Addresses that are not public (loopback, private, link-local,
 * carrier-grade NAT, documentation ranges) have no country: the database would otherwise
 * place 192.168.x.x in whichever country registered it.
 */
export interface CountryLookup {
  /** ISO 3166-1 alpha-2, upper case; undefined for non-public or unknown addresses. */
  country(ip: string): string | undefined;
}

export const COUNTRY_DATABASE = createRequire(import.meta.url).resolve(
  '@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb',
);

const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['2001:db8::', 32],
  ['ff00::', 8],
] as const) {
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');
}

/** `::ffff:203.0.113.5` (an IPv4 client on a dual-stack socket) → `203.0.113.5`. */
export function unmapIp(ip: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return match ? match[1]! : ip;
}

export function isPublicIp(ip: string): boolean {
  const address = unmapIp(ip);
  const family = isIP(address);
  if (family === 0) return false;
  return !NOT_PUBLIC.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** The database's records are `{ country_code }`, not MaxMind's own shapes. */
type CountryReader = Reader<Response>;

const opened = new Map<string, Promise<CountryReader>>();

/** Opens the database once per process (about 8 MB, read into memory). */
export async function openCountryLookup(file = COUNTRY_DATABASE): Promise<CountryLookup> {
  let reader = opened.get(file);
  if (!reader) {
    reader = maxmind.open<Response>(file);
    opened.set(file, reader);
    reader.catch(() => opened.delete(file));
  }
  return countryLookup(await reader);
}

export function countryLookup(reader: CountryReader): CountryLookup {
  return {
    country(ip) {
      if (!isPublicIp(ip)) return undefined;
      const record = reader.get(unmapIp(ip)) as { country_code?: unknown } | null;
      const code = record?.country_code;
      return typeof code === 'string' && /^[A-Za-z]{2}$/.test(code)
        ? code.toUpperCase()
        : undefined;
    },
  };
}

const NAMES = new Intl.DisplayNames(['ru'], { type: 'region' });

/** RU → «Россия»; the code itself when the name is unknown. */
export function countryName(code: string): string {
  try {
    return NAMES.of(code) ?? code;
  } catch {
    return code;
  }
}
