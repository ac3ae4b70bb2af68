/**
 * How long an upstream asked us to wait, from its response headers.
 *
 * Precedence: `retry-after-ms` (OpenAI, milliseconds), then `Retry-After`
 * (RFC 9110: delay-seconds or an HTTP-date). Garbage, negative or non-finite
 * values are ignored (undefined), so the caller falls back to its own backoff;
 * capping a huge value at the request deadline is the caller's job.
 */
export function parseRetryAfter(
  headers: Record<string, string | string[] | undefined>,
  now: number = Date.now(),
): number | undefined {
  const ms = first(headers['retry-after-ms']);
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms.trim())) {
    const value = Number(ms);
    if (Number.isFinite(value)) return Math.round(value);
  }
  const after = first(headers['retry-after'])?.trim();
  if (after === undefined || after === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return Math.round(Number(after) * 1000);
  // An HTTP-date must name a weekday/month; bare numbers with signs or units are not dates.
  if (!/[A-Za-z]{3}/.test(after)) return undefined;
  const date = Date.parse(after);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
