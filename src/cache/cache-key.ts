/**
 * The exact cache's key: what was asked, canonically, hashed.
 *
 * The key covers the API it was asked through (an OpenAI chat answer is not
 * an Anthropic message), the model name and every field of the body that can
 * change the answer, with object keys sorted at every depth. A field left out
 * stays distinct from one sent with its default value (`temperature` absent
 * is not `temperature: 1`): the gateway cannot know every provider's defaults.
 * Fields that cannot change the answer are left out: how it is delivered
 * (`stream`, `stream_options`) and who asked (`user`, `metadata`, `store`).
 * README "Response cache" states the rule for users.
 */
import { hash } from 'node:crypto';
import type { CacheKey } from './cache-store.ts';

/** The inbound API a request came through: its answers are stored in that API's format. */
export type CacheApi = 'chat' | 'messages' | 'embeddings';

/** Body fields that never change the answer, per API. */
const VOLATILE: Record<CacheApi, ReadonlySet<string>> = {
  chat: new Set(['stream', 'stream_options', 'user', 'metadata', 'store']),
  messages: new Set(['stream', 'metadata']),
  embeddings: new Set(['user']),
};

export type CacheScopeSetting = 'key' | 'team' | 'global';

/** Who may be served an answer: one key's requests only (default), one team's, or everyone's. */
export function cacheScope(
  setting: CacheScopeSetting,
  key: { id: string; isMaster: boolean; teamId?: string | null },
): string {
  if (setting === 'global') return 'global';
  // Keys carry no team yet: a team scope is a key scope until they do (never wider than asked).
  if (setting === 'team' && key.teamId) return `team:${key.teamId}`;
  return key.isMaster ? 'key:master' : `key:${key.id}`;
}

/**
 * The key of a request whose body arrived as `bodyText`: remembered by that
 * text, so a request sent again byte for byte (what an exact-cache hit
 * usually is) skips the canonical form and the hash, ~3 µs of a hit's ~48.
 * The key is a function of the text (the body is parsed from it, and nothing
 * but the text, API, model and scope goes into the key), so a remembered key
 * is the one `cacheKey` would compute. Bounded: texts up to MEMO_TEXT_CHARS,
 * MEMO_ENTRIES of them (~4 MB at most), the oldest forgotten first; only the
 * process holds them (never stored or shown), and only for cached models.
 */
export function cacheKeyOfText(
  api: CacheApi,
  body: object,
  model: string,
  scope: string,
  bodyText: string | undefined,
): CacheKey {
  if (bodyText === undefined || bodyText.length > MEMO_TEXT_CHARS) return cacheKey(api, body, model, scope);
  const known = memo.get(bodyText);
  if (known !== undefined && known.api === api && known.key.model === model && known.key.scope === scope) {
    return known.key;
  }
  const key = cacheKey(api, body, model, scope);
  if (known === undefined && memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
  memo.set(bodyText, { api, key });
  return key;
}

/** Longest body text a key is remembered by (the JSON parser keeps no longer text for it). */
export const MEMO_TEXT_CHARS = 4096;
const MEMO_ENTRIES = 1024;
/** Body text → the key last computed for it (with the API it came through). */
const memo = new Map<string, { api: CacheApi; key: CacheKey }>();

export function cacheKey(api: CacheApi, body: object, model: string, scope: string): CacheKey {
  const volatile = VOLATILE[api];
  const fields = Object.keys(body)
    .filter((name) => !volatile.has(name) && (body as Record<string, unknown>)[name] !== undefined)
    .sort();
  let text = `${api}\n{`;
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]!;
    text += `${i > 0 ? ',' : ''}${JSON.stringify(name)}:${canonicalJson((body as Record<string, unknown>)[name])}`;
  }
  text += '}';
  return { model, scope, hash: hash('sha256', text, 'base64url') };
}

/** JSON with object keys sorted at every depth (and `undefined` members left out, as JSON.stringify does). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  // Concatenated in place, without intermediate arrays: this runs on every cached request.
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) text += ',';
      text += canonicalJson(value[i] ?? null);
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  const names = Object.keys(record).sort();
  let text = '{';
  for (const name of names) {
    const member = record[name];
    if (member === undefined) continue;
    if (text.length > 1) text += ',';
    text += `${JSON.stringify(name)}:${canonicalJson(member)}`;
  }
  return `${text}}`;
}
