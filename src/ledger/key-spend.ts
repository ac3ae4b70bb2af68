/**
 * What a key spent in a time range, from the ledger: the sum of its rows'
 * `cost_micros` (rows of unknown cost count nothing). Budget counters start
 * from it (src/limits/budget-store.ts); the (key_id, created_at) index makes
 * it one range scan.
 */
import { sql } from 'kysely';
import type { Database } from '../store/sql.ts';

export async function keySpentMicros(
  database: Database,
  keyId: string,
  fromMs: number,
  toMs: number,
): Promise<number> {
  let query = database.db
    .selectFrom('usage_ledger')
    .select(sql<string | number | null>`sum(cost_micros)`.as('spent'))
    .where('key_id', '=', keyId)
    .where('created_at', '>=', fromMs);
  if (Number.isFinite(toMs)) query = query.where('created_at', '<', toMs);
  const row = await query.executeTakeFirst();
  return Number(row?.spent ?? 0);
}
