/**
 * What a budget subject spent in a time range, from the ledger: the sum of
 * its rows' `cost_micros` (rows of unknown cost count nothing). Budget
 * counters start from it (src/limits/budget-store.ts). A key's spend is one
 * range scan of the (key_id, created_at) index; a team's is that of the keys
 * in it now.
 */
import { sql } from 'kysely';
import type { Database } from '../store/sql.ts';

/** The spend of a budget subject, `key:<id>` or `team:<id>`, from `fromMs` up to (not at) `toMs`. */
export async function subjectSpentMicros(
  database: Database,
  subject: string,
  fromMs: number,
  toMs: number,
): Promise<number> {
  const colon = subject.indexOf(':');
  const kind = subject.slice(0, colon);
  const id = subject.slice(colon + 1);
  if (kind !== 'key' && kind !== 'team') throw new TypeError(`unknown budget subject ${subject}`);
  let query = database.db
    .selectFrom('usage_ledger')
    .select(sql<string | number | null>`sum(cost_micros)`.as('spent'))
    .where('created_at', '>=', fromMs);
  query =
    kind === 'key'
      ? query.where('key_id', '=', id)
      : query.where('key_id', 'in', (eb) =>
          eb.selectFrom('virtual_keys').select('id').where('team_id', '=', id),
        );
  if (Number.isFinite(toMs)) query = query.where('created_at', '<', toMs);
  const row = await query.executeTakeFirst();
  return Number(row?.spent ?? 0);
}
