import { OptionError } from './errors.js';

export interface Endpoint {
  /** Undefined when only a port was given. */
  readonly host: string | undefined;
  readonly port: number;
}

/**
 * Reads `PORT`, `HOST:PORT` or `[IPv6]:PORT`. `field` names the argument in
 * the error. Port 0 is allowed only where `allowZero` says (listen on any).
 */
export function parseEndpoint(text: string, field: string, allowZero = false): Endpoint {
  const value = text.trim();
  let host: string | undefined;
  let portText = value;
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(value);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2]!;
  } else if (value.includes(':')) {
    const at = value.lastIndexOf(':');
    host = value.slice(0, at);
    portText = value.slice(at + 1);
    if (host.includes(':'))
      throw new OptionError(
        field,
        `"${text}": write an IPv6 address as [addr]:port`,
        'ERR_ADDRESS',
      );
  }
  if (host !== undefined && !/^[A-Za-z0-9.\-:%]+$/.test(host)) {
    throw new OptionError(field, `"${text}" has an invalid host "${host}"`, 'ERR_ADDRESS');
  }
  if (!/^\d+$/.test(portText)) {
    throw new OptionError(
      field,
      `"${text}" is not a port number (expected PORT or HOST:PORT)`,
      'ERR_ADDRESS',
    );
  }
  const port = Number(portText);
  if (port > 65_535 || (port === 0 && !allowZero)) {
    throw new OptionError(field, `port ${portText} is out of range (1-65535)`, 'ERR_ADDRESS');
  }
  return { host, port };
}

/** `host:port`, bracketing IPv6 and unmapping `::ffff:1.2.3.4`. */
export function formatEndpoint(host: string | undefined, port: number): string {
  const h = unmapIPv4(host ?? '127.0.0.1');
  return h.includes(':') ? `[${h}]:${port}` : `${h}:${port}`;
}

export function unmapIPv4(host: string): string {
  return host.startsWith('::ffff:') && host.includes('.') ? host.slice(7) : host;
}

/**
 * One spelling per host, so that two spellings of one address compare
 * equal: brackets and an IPv6 zone dropped, IPv4-mapped addresses unmapped
 * (`::ffff:1.2.3.4` is `1.2.3.4`), other IPv6 in its short form
 * (`0:0:0:0:0:0:0:1` and `[::1]` are `::1`). Unmapping alone is not enough:
 * a tracker's peers6 list spells an address in full, a socket in short.
 */
export function canonicalHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const h = unmapIPv4(bare);
  if (!h.includes(':')) return h;
  try {
    return unmapIPv4(new URL(`http://[${h.replace(/%.*$/, '')}]/`).hostname.slice(1, -1));
  } catch {
    return h;
  }
}

/**
 * The key connections are counted under per source: an IPv4 address as is,
 * an IPv6 address by its /64, since one host commonly holds a whole /64 and
 * could otherwise pick a fresh source address for every connection.
 */
export function sourceKey(host: string | undefined): string {
  const h = unmapIPv4(host ?? 'unknown').replace(/%.*$/, '');
  if (!h.includes(':')) return h;
  const [head = '', tail] = h.split('::') as [string, string | undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? headGroups
      : [
          ...headGroups,
          ...Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill('0'),
          ...tailGroups,
        ];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}
