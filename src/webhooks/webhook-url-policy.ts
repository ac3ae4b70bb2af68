/**
 * Where a webhook may go. A webhook URL can come from a client (a job's
 * `webhook_url`), and a gateway that POSTs wherever it is told is a way into
 * the network behind it (SSRF: the cloud metadata service at 169.254.169.254,
 * an admin port on 127.0.0.1, a database on 10.x). So:
 *
 * - a URL is http or https, carries no credentials, names a host, and is at
 *   most 2,048 characters (`checkUrl`, before anything is sent);
 * - the address a delivery connects to must be public: loopback, private,
 *   link-local, unspecified, shared (CGNAT), multicast, broadcast and reserved
 *   ranges are refused, IPv4-mapped and other IPv6 forms carrying an IPv4
 *   address judged by that address (`classifyAddress`);
 * - unless `webhooks.allowlist` names the host (exact, or `*.domain`) or a
 *   block holding the address (src/config/webhook-allowlist.ts).
 *
 * The address is judged when the connection is made, on what the name resolved
 * to for that connection (`resolveAllowed`, called from the connector in
 * ./webhook-delivery.ts), never on an earlier lookup: a name whose DNS answer
 * changes between a check and the connect (rebinding) cannot slip through.
 * A name with any refused address is refused whole, rather than connected
 * through its public addresses only: a public name has no business answering
 * with a private address, and a refusal says so where a filter would hide it.
 *
 * Numeric host forms (`http://2130706433/`, `http://0x7f.1/`,
 * `http://[::ffff:7f00:1]/`) need nothing special: the WHATWG URL parser, which
 * undici also connects by, turns them into the address they reach.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { normalizeHostName, parseWebhookAllowlistEntry } from '../config/webhook-allowlist.ts';

export const MAX_WEBHOOK_URL_LENGTH = 2_048;

/** What an address is; anything but `public` is refused unless allowlisted. */
export type AddressKind =
  | 'public'
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'shared'
  | 'multicast'
  | 'broadcast'
  | 'reserved'
  | 'invalid';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (the default: `dns.lookup(host, { all: true })`). */
export type WebhookResolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** A URL or an address the policy refuses. Its message never holds the URL (its path or query may be a secret). */
export class WebhookPolicyError extends Error {
  override readonly name = 'WebhookPolicyError';
  readonly code = 'EWEBHOOKPOLICY';
}

export interface WebhookPolicyOptions {
  /** `webhooks.allowlist`: host names, `*.domain`s, addresses and CIDR blocks allowed even if not public. */
  allowlist?: readonly string[];
  /** How host names are resolved at connect time; tests pass their own. */
  resolve?: WebhookResolver;
}

export class WebhookPolicy {
  readonly #hosts = new Set<string>();
  readonly #domains: string[] = [];
  readonly #blocks = new BlockList();
  readonly #resolve: WebhookResolver;

  constructor(options: WebhookPolicyOptions = {}) {
    for (const raw of options.allowlist ?? []) {
      const entry = parseWebhookAllowlistEntry(raw);
      // The config schema refuses these at start-up; a caller building a policy by hand learns here.
      if (entry === undefined) throw new TypeError(`not a webhook allowlist entry: ${JSON.stringify(raw)}`);
      if (entry.kind === 'host') this.#hosts.add(entry.name);
      else if (entry.kind === 'domain') this.#domains.push(entry.suffix);
      else this.#blocks.addSubnet(entry.address, entry.prefix, entry.family);
    }
    this.#resolve = options.resolve ?? resolveWithDns;
  }

  /**
   * Parses a URL given for webhooks and checks what can be checked before any
   * lookup: scheme, credentials, length, and the address when the host is one.
   * Throws a WebhookPolicyError saying what is wrong.
   */
  checkUrl(raw: string | URL): URL {
    const text = String(raw);
    if (text.length > MAX_WEBHOOK_URL_LENGTH) {
      throw new WebhookPolicyError(`webhook URL longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
    }
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new WebhookPolicyError('not a valid webhook URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new WebhookPolicyError('a webhook URL must be http or https');
    }
    // A user:password in the URL would be sent as Basic auth to wherever the URL points.
    if (url.username !== '' || url.password !== '') {
      throw new WebhookPolicyError('a webhook URL may not carry credentials');
    }
    if (url.href.length > MAX_WEBHOOK_URL_LENGTH) {
      throw new WebhookPolicyError(`webhook URL longer than ${MAX_WEBHOOK_URL_LENGTH} characters`);
    }
    const host = unbracket(url.hostname);
    if (host === '') throw new WebhookPolicyError('a webhook URL must name a host');
    if (isIP(host) !== 0) {
      const refusal = this.refusal(host, host);
      if (refusal !== undefined) throw new WebhookPolicyError(refusal);
    } else if (isLocalhostName(host) && !this.#hostAllowed(host)) {
      // Resolves to loopback whatever DNS says (RFC 6761): refused now rather than at connect time.
      throw new WebhookPolicyError(`refused by the webhook policy: ${host} is a loopback name`);
    }
    return url;
  }

  /**
   * Why connecting to `address` (reached by the name `hostname`, when there is
   * one) is refused, or undefined when it is allowed.
   */
  refusal(address: string, hostname?: string): string | undefined {
    if (hostname !== undefined && this.#hostAllowed(hostname)) return undefined;
    const kind = classifyAddress(address);
    if (kind === 'public') return undefined;
    if (kind !== 'invalid' && this.#addressAllowed(address)) return undefined;
    const what = `${kind === 'invalid' || kind === 'unspecified' ? 'an' : 'a'} ${kind} address`;
    return hostname === undefined || unbracket(hostname) === address
      ? `refused by the webhook policy: ${address} is ${what}`
      : `refused by the webhook policy: ${hostname} resolved to ${address}, ${what}`;
  }

  /**
   * The addresses `hostname` has now, every one allowed; throws a
   * WebhookPolicyError if any is refused (or passes on the resolver's error).
   * Called for each new connection, so what is checked is what is connected to.
   */
  async resolveAllowed(hostname: string): Promise<ResolvedAddress[]> {
    const host = unbracket(hostname);
    const family = isIP(host);
    const addresses: readonly ResolvedAddress[] =
      family !== 0 ? [{ address: host, family: family as 4 | 6 }] : await this.#resolve(host);
    if (addresses.length === 0) {
      throw Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' });
    }
    for (const { address } of addresses) {
      const refusal = this.refusal(address, host);
      if (refusal !== undefined) throw new WebhookPolicyError(refusal);
    }
    return [...addresses];
  }

  #hostAllowed(hostname: string): boolean {
    const name = normalizeHostName(unbracket(hostname));
    if (this.#hosts.has(name)) return true;
    return this.#domains.some((suffix) => name.endsWith(suffix));
  }

  #addressAllowed(address: string): boolean {
    const bare = withoutZone(address);
    const family = isIP(bare) === 4 ? 'ipv4' : 'ipv6';
    if (this.#blocks.check(bare, family)) return true;
    // ::ffff:10.0.0.5 is 10.0.0.5: an IPv4 block allows it in either spelling.
    const embedded = family === 'ipv6' ? embeddedIPv4(ipv6Words(bare)) : undefined;
    return embedded !== undefined && this.#blocks.check(embedded, 'ipv4');
  }
}

/**
 * The policy for an endpoint the operator wrote into the config
 * (`webhooks.alert_url`): the allowlist plus that URL's own host, which the
 * operator named and so trusts (an alert receiver on 127.0.0.1 keeps working).
 * Only for that endpoint: URLs clients give get `new WebhookPolicy({ allowlist })`.
 */
export function operatorEndpointPolicy(url: string, options: WebhookPolicyOptions = {}): WebhookPolicy {
  const host = new URL(url).hostname;
  return new WebhookPolicy({ ...options, allowlist: [...(options.allowlist ?? []), unbracket(host)] });
}

type Range = readonly [address: string, prefix: number];

/** First match wins: 255.255.255.255 is broadcast before 240/4 makes it reserved. */
const IPV4_RANGES: ReadonlyArray<readonly [Exclude<AddressKind, 'public' | 'invalid'>, Range[]]> = [
  ['unspecified', [['0.0.0.0', 8]]], // "this network"; Linux connects 0.0.0.0 to loopback
  ['loopback', [['127.0.0.0', 8]]],
  [
    'private',
    [
      ['10.0.0.0', 8],
      ['172.16.0.0', 12],
      ['192.168.0.0', 16],
    ],
  ],
  ['link-local', [['169.254.0.0', 16]]], // 169.254.169.254: cloud metadata
  ['shared', [['100.64.0.0', 10]]], // carrier-grade NAT, and some clouds' internal services
  ['multicast', [['224.0.0.0', 4]]],
  ['broadcast', [['255.255.255.255', 32]]],
  [
    'reserved',
    [
      ['192.0.0.0', 24], // IETF protocol assignments
      ['192.0.2.0', 24], // documentation
      ['192.88.99.0', 24], // 6to4 relay anycast
      ['198.18.0.0', 15], // benchmarking
      ['198.51.100.0', 24], // documentation
      ['203.0.113.0', 24], // documentation
      ['240.0.0.0', 4], // future use
    ],
  ],
];

const IPV6_RANGES: ReadonlyArray<readonly [Exclude<AddressKind, 'public' | 'invalid'>, Range[]]> = [
  ['unspecified', [['::', 128]]],
  ['loopback', [['::1', 128]]],
  [
    'private',
    [
      ['fc00::', 7], // unique local
      ['fec0::', 10], // site-local (deprecated)
    ],
  ],
  ['link-local', [['fe80::', 10]]],
  ['multicast', [['ff00::', 8]]],
  [
    'reserved',
    [
      ['::', 96], // IPv4-compatible (deprecated)
      ['::ffff:0:0:0', 96], // IPv4-translated
      ['64:ff9b:1::', 48], // local-use NAT64: translated by a local box to who knows where
      ['100::', 64], // discard-only
      ['2001::', 32], // Teredo: tunnels to an address it hides
      ['2001:db8::', 32], // documentation
    ],
  ],
];

function blockLists(
  ranges: typeof IPV4_RANGES,
  family: 'ipv4' | 'ipv6',
): ReadonlyArray<readonly [AddressKind, BlockList]> {
  return ranges.map(([kind, list]) => {
    const blocks = new BlockList();
    for (const [address, prefix] of list) blocks.addSubnet(address, prefix, family);
    return [kind, blocks] as const;
  });
}

const IPV4_BLOCKS = blockLists(IPV4_RANGES, 'ipv4');
const IPV6_BLOCKS = blockLists(IPV6_RANGES, 'ipv6');

/** What kind of address `address` (an IPv4 or IPv6 address, no brackets) is. */
export function classifyAddress(address: string): AddressKind {
  const bare = withoutZone(address);
  switch (isIP(bare)) {
    case 4:
      return IPV4_BLOCKS.find(([, blocks]) => blocks.check(bare, 'ipv4'))?.[0] ?? 'public';
    case 6: {
      // An IPv6 address that carries an IPv4 one reaches (or is translated to) that one.
      const embedded = embeddedIPv4(ipv6Words(bare));
      if (embedded !== undefined) return classifyAddress(embedded);
      return IPV6_BLOCKS.find(([, blocks]) => blocks.check(bare, 'ipv6'))?.[0] ?? 'public';
    }
    default:
      return 'invalid';
  }
}

/**
 * The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), NAT64
 * (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) address.
 */
function embeddedIPv4(words: readonly number[]): string | undefined {
  const [w0, w1, w2, w3, w4, w5, w6, w7] = words as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (w0 === 0 && w1 === 0 && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0xffff) return ipv4(w6, w7);
  if (w0 === 0x64 && w1 === 0xff9b && w2 === 0 && w3 === 0 && w4 === 0 && w5 === 0) return ipv4(w6, w7);
  if (w0 === 0x2002) return ipv4(w1, w2);
  return undefined;
}

function ipv4(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit words of a valid IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function ipv6Words(address: string): number[] {
  let text = address;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const parse = (part: string) =>
    part === '' ? [] : part.split(':').map((word) => Number.parseInt(word, 16));
  const left = parse(head);
  if (rest === undefined) return left;
  const right = parse(rest);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function withoutZone(address: string): string {
  const percent = address.indexOf('%');
  return percent === -1 ? address : address.slice(0, percent);
}

function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** `localhost` and every name under it (RFC 6761). */
function isLocalhostName(host: string): boolean {
  const name = normalizeHostName(host);
  return name === 'localhost' || name.endsWith('.localhost');
}

async function resolveWithDns(hostname: string): Promise<readonly ResolvedAddress[]> {
  const found = await lookup(hostname, { all: true, order: 'verbatim' });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}
