/**
 * The grammar of `webhooks.allowlist` entries, shared by the config schema
 * (which refuses a bad entry at start-up) and the webhook policy
 * (src/webhooks/webhook-url-policy.ts, which applies them).
 *
 * An entry names what a webhook may reach even though its address is private,
 * loopback or link-local:
 * - a host name, exact (`hooks.internal`), or every name under a domain
 *   (`*.corp.example`: `a.corp.example`, `a.b.corp.example`, not `corp.example`);
 * - an IP address (`10.0.0.5`, `fd00::5`), or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
 */
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export type WebhookAllowlistEntry =
  | { kind: 'host'; name: string }
  | { kind: 'domain'; suffix: string }
  | { kind: 'cidr'; address: string; prefix: number; family: 'ipv4' | 'ipv6' };

export const WEBHOOK_ALLOWLIST_RULE =
  'expected a host name (hooks.example.com, or *.example.com for the names under it), an IP address, or a CIDR block (10.0.0.0/8, fd00::/8)';

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A host name as URLs carry it: lower case, ASCII (punycode), without a final dot. */
export function normalizeHostName(name: string): string {
  const ascii = domainToASCII(name.toLowerCase());
  return ascii.endsWith('.') ? ascii.slice(0, -1) : ascii;
}

/** The entry, or undefined when it is not one. */
export function parseWebhookAllowlistEntry(raw: string): WebhookAllowlistEntry | undefined {
  const text = raw.trim();
  if (text === '' || text.length > 260) return undefined;
  const slash = text.indexOf('/');
  const addressPart = unbracket(slash === -1 ? text : text.slice(0, slash));
  const family = isIP(addressPart);
  if (family !== 0) {
    const max = family === 4 ? 32 : 128;
    let prefix = max;
    if (slash !== -1) {
      const digits = text.slice(slash + 1);
      if (!/^\d{1,3}$/.test(digits)) return undefined;
      prefix = Number(digits);
      if (prefix > max) return undefined;
    }
    return { kind: 'cidr', address: addressPart, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
  }
  if (slash !== -1) return undefined;
  const wildcard = text.startsWith('*.');
  const name = normalizeHostName(wildcard ? text.slice(2) : text);
  // `2130706433` or `0x7f.1` in a URL is 127.0.0.1: so it is here.
  const numeric = isIP(name);
  if (!wildcard && numeric !== 0) {
    return {
      kind: 'cidr',
      address: name,
      prefix: numeric === 4 ? 32 : 128,
      family: numeric === 4 ? 'ipv4' : 'ipv6',
    };
  }
  if (name === '' || name.length > 253 || !name.split('.').every((label) => LABEL.test(label))) {
    return undefined;
  }
  return wildcard ? { kind: 'domain', suffix: `.${name}` } : { kind: 'host', name };
}

export function isWebhookAllowlistEntry(raw: string): boolean {
  return parseWebhookAllowlistEntry(raw) !== undefined;
}

function unbracket(text: string): string {
  return text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
}
