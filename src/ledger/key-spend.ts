/**
 * What a key (or a team's keys) spent in a time range, from the ledger: the
 * sum of its rows' `cost_micros` (rows of unknown cost count nothing). Budget
 * counters start from it (src/limits/budget-store.ts); the (key_id,
 * created_at) index makes a key's one range scan. A team's spend is that of
 * the keys in it now.
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

/** The spend of a budget subject: `key:<id>` or `team:<id>`. */
export async function subjectSpentMicros(
  database: Database,
  subject: string,
  fromMs: number,
  toMs: number,
): Promise<number> {
  if (subject.startsWith('key:')) return keySpentMicros(database, subject.slice('key:'.length), fromMs, toMs);
  if (!subject.startsWith('team:')) throw new TypeError(`unknown budget subject ${subject}`);
  let query = database.db
    .selectFrom('usage_ledger')
    .select(sql<string | number | null>`sum(cost_micros)`.as('spent'))
    .where('key_id', 'in', (eb) =>
      eb.selectFrom('virtual_keys').select('id').where('team_id', '=', subject.slice('team:'.length)),
    )
    .where('created_at', '>=', fromMs);
  if (Number.isFinite(toMs)) query = query.where('created_at', '<', toMs);
  const row = await query.executeTakeFirst();
  return Number(row?.spent ?? 0);
}
