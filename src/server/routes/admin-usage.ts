/**
 * `GET /admin/usage`: what was used and spent, from the ledger, grouped by
 * key, team (the key's team now), model, provider or UTC day over a time
 * range. Master key only.
 *
 * `?group_by=key|team|model|provider|day&from=&to=` (ISO-8601 or epoch ms; the
 * last 30 days by default), `limit` groups a page (1-1000, 100), the next page
 * with `cursor=<next_cursor>`; `format=csv` answers every group of the range
 * as CSV (at most 100,000 rows).
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../core/errors.ts';
import { USAGE_GROUPS, type UsageGroup, type UsageGroupRow, usageReport } from '../../ledger/usage-report.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';

const DAY_MS = 86_400_000;
const CSV_MAX_ROWS = 100_000;
const GROUP_FIELD: Record<UsageGroup, string> = {
  key: 'key_id',
  team: 'team_id',
  model: 'model',
  provider: 'provider',
  day: 'day',
};

export function registerAdminUsageRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  app.get('/admin/usage', { onRequest }, async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    const groupBy = groupOf(query['group_by']);
    const toMs = timeOf(query['to'], 'to') ?? Date.now();
    const fromMs = timeOf(query['from'], 'from') ?? toMs - 30 * DAY_MS;
    if (fromMs >= toMs)
      throw new GatewayError('invalid_request', 'from: must be before to', { param: 'from' });
    const range = { groupBy, fromMs, toMs };

    if (query['format'] === 'csv') {
      const rows: UsageGroupRow[] = [];
      let after: string | undefined;
      while (rows.length < CSV_MAX_ROWS) {
        const page = await usageReport(gw.database, { ...range, after, limit: 1_000 });
        rows.push(...page);
        if (page.length < 1_000) break;
        after = page.at(-1)!.group;
      }
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="usage-by-${groupBy}.csv"`);
      return csv(groupBy, rows.slice(0, CSV_MAX_ROWS));
    }
    if (query['format'] !== undefined && query['format'] !== 'json') {
      throw new GatewayError('invalid_request', 'format: expected json or csv', { param: 'format' });
    }

    const limit = limitOf(query['limit']);
    const after = cursorOf(query['cursor'], groupBy);
    const page = await usageReport(gw.database, { ...range, after, limit });
    return {
      object: 'list',
      group_by: groupBy,
      from: new Date(fromMs).toISOString(),
      to: new Date(toMs).toISOString(),
      data: page.map((row) => view(groupBy, row)),
      next_cursor: page.length === limit ? encodeCursor(groupBy, page.at(-1)!.group) : null,
    };
  });
}

function view(groupBy: UsageGroup, row: UsageGroupRow): Record<string, string | number> {
  const { group, cost_micros, ...counts } = row;
  return { [GROUP_FIELD[groupBy]]: group, ...counts, cost_usd: (cost_micros / 1_000_000).toFixed(6) };
}

function csv(groupBy: UsageGroup, rows: UsageGroupRow[]): string {
  const columns = [
    GROUP_FIELD[groupBy],
    'requests',
    'attempts',
    'prompt_tokens',
    'completion_tokens',
    'cached_tokens',
    'reasoning_tokens',
    'cost_usd',
    'unpriced_attempts',
  ];
  const lines = [columns.join(',')];
  for (const row of rows) {
    const fields = view(groupBy, row);
    lines.push(columns.map((column) => csvField(String(fields[column]))).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** RFC 4180 quoting; a leading `=`, `+`, `-` or `@` is quoted behind a `'` so a spreadsheet never runs it as a formula. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n']/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function groupOf(value: unknown): UsageGroup {
  if (value === undefined) return 'key';
  if (typeof value === 'string' && (USAGE_GROUPS as readonly string[]).includes(value))
    return value as UsageGroup;
  throw new GatewayError('invalid_request', `group_by: expected one of ${USAGE_GROUPS.join(', ')}`, {
    param: 'group_by',
  });
}

function timeOf(value: unknown, param: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const text = String(value);
  const ms = /^\d{1,16}$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) {
    throw new GatewayError('invalid_request', `${param}: expected an ISO-8601 time or epoch milliseconds`, {
      param,
    });
  }
  return ms;
}

function limitOf(value: unknown): number {
  if (value === undefined) return 100;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1_000) {
    throw new GatewayError('invalid_request', 'limit: expected a whole number from 1 to 1000', {
      param: 'limit',
    });
  }
  return n;
}

function encodeCursor(groupBy: UsageGroup, after: string): string {
  return Buffer.from(JSON.stringify({ by: groupBy, after })).toString('base64url');
}

function cursorOf(value: unknown, groupBy: UsageGroup): string | undefined {
  if (value === undefined) return undefined;
  try {
    const decoded = JSON.parse(Buffer.from(String(value), 'base64url').toString('utf8')) as {
      by?: unknown;
      after?: unknown;
    };
    if (decoded.by === groupBy && typeof decoded.after === 'string') return decoded.after;
  } catch {
    // Reported below.
  }
  throw new GatewayError('invalid_request', 'cursor: not a next_cursor of this group_by', {
    param: 'cursor',
  });
}
