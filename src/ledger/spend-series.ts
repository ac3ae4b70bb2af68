/**
 * Spend over time for the dashboard, from the ledger: priced attempts summed
 * in integer micro-dollars per time bucket and per model, key or team, for
 * the groups that spent most over the range (the rest as one `other`
 * series), and the top spenders of a range. Read from a replica when there
 * is one, as the usage API is.
 */
import { sql } from 'kysely';
import type { Database } from '../store/sql.ts';
import { ledgerGroupExpression } from './usage-report.ts';

export const SPEND_GROUPS = ['model', 'key', 'team'] as const;
export type SpendGroup = (typeof SPEND_GROUPS)[number];

/** The group name the rest of the groups are summed under. */
export const OTHER_GROUP = '(other)';

export interface SpendSeriesQuery {
  groupBy: SpendGroup;
  fromMs: number;
  toMs: number;
  /** Width of a bucket; buckets start at `fromMs`. */
  bucketMs: number;
  /** Groups with a series of their own (by spend over the range); the rest are summed as OTHER_GROUP. */
  top: number;
}

export interface SpendSeries {
  /** Start of each bucket, epoch ms. */
  buckets: number[];
  /** Each group's spend per bucket (micro-dollars), biggest spender first. */
  series: { group: string; total_micros: number; micros: number[] }[];
}

export interface TopSpender {
  group: string;
  requests: number;
  cost_micros: number;
  tokens: number;
}

/** Groups by spend over [fromMs, toMs), biggest first. */
export async function topSpenders(
  database: Database,
  query: { groupBy: SpendGroup; fromMs: number; toMs: number; limit: number },
): Promise<TopSpender[]> {
  const group = ledgerGroupExpression(database, query.groupBy);
  const cost = sql<string | number | null>`sum(usage_ledger.cost_micros)`;
  const rows = await database.read((db) =>
    db
      .selectFrom('usage_ledger')
      .$if(query.groupBy === 'team', (q) =>
        q.leftJoin('virtual_keys', 'virtual_keys.id', 'usage_ledger.key_id'),
      )
      .select([
        group.as('group'),
        sql<string | number>`count(distinct usage_ledger.request_id)`.as('requests'),
        cost.as('cost_micros'),
        sql<
          string | number | null
        >`sum(coalesce(usage_ledger.prompt_tokens, 0) + coalesce(usage_ledger.completion_tokens, 0))`.as(
          'tokens',
        ),
      ])
      .where('usage_ledger.created_at', '>=', query.fromMs)
      .where('usage_ledger.created_at', '<', query.toMs)
      .groupBy(group)
      .orderBy(sql`coalesce(sum(usage_ledger.cost_micros), 0)`, 'desc')
      .orderBy(group)
      .limit(query.limit)
      .execute(),
  );
  return rows.map((row) => ({
    group: String(row.group),
    requests: Number(row.requests),
    cost_micros: Number(row.cost_micros ?? 0),
    tokens: Number(row.tokens ?? 0),
  }));
}

export async function spendSeries(database: Database, query: SpendSeriesQuery): Promise<SpendSeries> {
  const count = Math.max(1, Math.ceil((query.toMs - query.fromMs) / query.bucketMs));
  const buckets = Array.from({ length: count }, (_, i) => query.fromMs + i * query.bucketMs);
  const leaders = await topSpenders(database, { ...query, limit: query.top });
  const named = new Set(leaders.filter((l) => l.cost_micros > 0).map((l) => l.group));

  const group = ledgerGroupExpression(database, query.groupBy);
  // Integer division on both dialects: bigint / integer in PostgreSQL, integer / integer in SQLite.
  // Literals, not parameters: a bound number may arrive as a float (SQLite) or untyped (PostgreSQL).
  const bucket = sql<
    string | number
  >`(usage_ledger.created_at - ${sql.lit(Math.trunc(query.fromMs))}) / ${sql.lit(Math.trunc(query.bucketMs))}`;
  const rows = await database.read((db) =>
    db
      .selectFrom('usage_ledger')
      .$if(query.groupBy === 'team', (q) =>
        q.leftJoin('virtual_keys', 'virtual_keys.id', 'usage_ledger.key_id'),
      )
      .select([
        group.as('group'),
        bucket.as('bucket'),
        sql<string | number | null>`sum(usage_ledger.cost_micros)`.as('cost_micros'),
      ])
      .where('usage_ledger.created_at', '>=', query.fromMs)
      .where('usage_ledger.created_at', '<', query.toMs)
      .where('usage_ledger.cost_micros', 'is not', null)
      .groupBy([group, bucket])
      .execute(),
  );

  const byGroup = new Map<string, number[]>();
  const seriesOf = (name: string): number[] => {
    let micros = byGroup.get(name);
    if (micros === undefined) {
      micros = new Array<number>(count).fill(0);
      byGroup.set(name, micros);
    }
    return micros;
  };
  for (const name of named) seriesOf(name);
  for (const row of rows) {
    const index = Number(row.bucket);
    const micros = Number(row.cost_micros ?? 0);
    if (!(index >= 0 && index < count) || micros === 0) continue;
    const name = named.has(String(row.group)) ? String(row.group) : OTHER_GROUP;
    seriesOf(name)[index]! += micros;
  }
  const series = [...byGroup].map(([name, micros]) => ({
    group: name,
    total_micros: micros.reduce((a, b) => a + b, 0),
    micros,
  }));
  // Biggest first, `other` last whatever its size.
  series.sort((a, b) =>
    a.group === OTHER_GROUP ? 1 : b.group === OTHER_GROUP ? -1 : b.total_micros - a.total_micros,
  );
  return { buckets, series };
}
