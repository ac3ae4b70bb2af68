/**
 * The usage API's reading of the ledger: attempts grouped by key, team (the
 * team its key is in now), model, provider or UTC day over a time range, in group order, one page at a time
 * (the cursor is the last group of the page before). Costs are summed in
 * integer micro-dollars; attempts whose price is unknown are counted apart,
 * never as free. Read from a replica when there is one (storage.replica_urls).
 */
import { type RawBuilder, sql } from 'kysely';
import type { Database } from '../store/sql.ts';

export const USAGE_GROUPS = ['key', 'team', 'model', 'provider', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  groupBy: UsageGroup;
  fromMs: number;
  toMs: number;
  /** Groups after this one (the previous page's last). */
  after?: string | undefined;
  limit: number;
}

export interface UsageGroupRow {
  group: string;
  /** Client requests (distinct request ids) with at least one attempt in the range. */
  requests: number;
  /** Ledger rows: upstream attempts and cache hits. */
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  cost_micros: number;
  /** Attempts whose model had no known price (their cost is not in `cost_micros`). */
  unpriced_attempts: number;
}

/**
 * The SQL expression a group is named by; the master key's rows (no key id)
 * are `master`, keys in no team `none`. The dashboard's spend series
 * (spend-series.ts) names its groups with it too, so the two agree.
 */
export function ledgerGroupExpression(database: Database, groupBy: UsageGroup): RawBuilder<string> {
  switch (groupBy) {
    case 'key':
      return sql<string>`coalesce(usage_ledger.key_id, 'master')`;
    case 'team':
      return sql<string>`coalesce(virtual_keys.team_id, 'none')`;
    case 'model':
      return sql<string>`usage_ledger.model_requested`;
    case 'provider':
      return sql<string>`coalesce(usage_ledger.provider, 'none')`;
    case 'day':
      return database.dialect === 'postgres'
        ? sql<string>`to_char(to_timestamp(usage_ledger.created_at / 1000.0) at time zone 'UTC', 'YYYY-MM-DD')`
        : sql<string>`strftime('%Y-%m-%d', usage_ledger.created_at / 1000, 'unixepoch')`;
  }
}

export async function usageReport(database: Database, query: UsageQuery): Promise<UsageGroupRow[]> {
  const group = ledgerGroupExpression(database, query.groupBy);
  const sum = (column: string): RawBuilder<string | number | null> =>
    sql`sum(${sql.ref(`usage_ledger.${column}`)})`;
  const rows = await database.read((db) => {
    let select = db
      .selectFrom('usage_ledger')
      // Only a team grouping needs the keys' teams.
      .$if(query.groupBy === 'team', (q) =>
        q.leftJoin('virtual_keys', 'virtual_keys.id', 'usage_ledger.key_id'),
      )
      .select([
        group.as('group'),
        sql<string | number>`count(distinct usage_ledger.request_id)`.as('requests'),
        sql<string | number>`count(*)`.as('attempts'),
        sum('prompt_tokens').as('prompt_tokens'),
        sum('completion_tokens').as('completion_tokens'),
        sum('cached_tokens').as('cached_tokens'),
        sum('reasoning_tokens').as('reasoning_tokens'),
        sum('cost_micros').as('cost_micros'),
        sql<string | number>`sum(case when usage_ledger.cost_micros is null then 1 else 0 end)`.as(
          'unpriced_attempts',
        ),
      ])
      .where('usage_ledger.created_at', '>=', query.fromMs)
      .where('usage_ledger.created_at', '<', query.toMs)
      .groupBy(group)
      .orderBy(group)
      .limit(query.limit);
    if (query.after !== undefined) select = select.having(group, '>', query.after);
    return select.execute();
  });
  return rows.map((row) => ({
    group: String(row.group),
    requests: Number(row.requests),
    attempts: Number(row.attempts),
    prompt_tokens: Number(row.prompt_tokens ?? 0),
    completion_tokens: Number(row.completion_tokens ?? 0),
    cached_tokens: Number(row.cached_tokens ?? 0),
    reasoning_tokens: Number(row.reasoning_tokens ?? 0),
    cost_micros: Number(row.cost_micros ?? 0),
    unpriced_attempts: Number(row.unpriced_attempts),
  }));
}
