/**
 * A bounded, printable echo of something a client sent (a path, a model name,
 * a target id), for error messages and logs: no control characters or
 * non-ASCII (no log or response injection), and never longer than `maxLength`.
 * `spaces: false` also replaces spaces (for URL paths, where none belong).
 */
export function printable(text: string, maxLength: number, options: { spaces?: boolean } = {}): string {
  const safe = text.replace(options.spaces === false ? /[^\x21-\x7e]/g : /[^\x20-\x7e]/g, '?');
  return safe.length > maxLength ? `${safe.slice(0, maxLength)}…` : safe;
}
