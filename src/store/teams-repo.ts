/**
 * Teams in SQL: a name, a tier, limits and a budget that the team's keys share
 * (counted together, across all of them). A team with active keys is not
 * deleted: its keys are moved or revoked first.
 */
import type { Selectable } from 'kysely';
import type { BudgetConfig, LimitsConfig } from '../config/limits-schema.ts';
import { objectText, parseObject } from './json-columns.ts';
import { stripNul, stripNulOrNull, type TeamsTable } from './schema.ts';
import type { Database } from './sql.ts';

export interface TeamRow {
  id: string;
  name: string;
  tier: string | null;
  limits: LimitsConfig | null;
  budget: BudgetConfig | null;
  createdAt: number;
}

export type TeamChanges = Partial<Pick<TeamRow, 'name' | 'tier' | 'limits' | 'budget'>>;

export async function insertTeam(database: Database, row: TeamRow): Promise<void> {
  await database.db
    .insertInto('teams')
    .values({
      id: row.id,
      name: stripNul(row.name),
      tier: stripNulOrNull(row.tier),
      limits: objectText(row.limits),
      budget: objectText(row.budget),
      created_at: row.createdAt,
    })
    .execute();
}

/** Every team; `replica`: read where reads may lag (the admin listing). */
export async function listTeams(database: Database, replica = false): Promise<TeamRow[]> {
  const query = (db: Database['db']) =>
    db.selectFrom('teams').selectAll().orderBy('created_at').orderBy('id').execute();
  const rows = await (replica ? database.read(query) : query(database.db));
  return rows.map(fromRow);
}

/** One team; `replica`: read where reads may lag (the admin API). */
export async function getTeam(database: Database, id: string, replica = false): Promise<TeamRow | undefined> {
  const query = (db: Database['db']) =>
    db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
  const row = await (replica ? database.read(query) : query(database.db));
  return row === undefined ? undefined : fromRow(row);
}

/** Applies `changes`; the updated row, or undefined when there is no such team. */
export async function updateTeam(
  database: Database,
  id: string,
  changes: TeamChanges,
): Promise<TeamRow | undefined> {
  const set: Partial<TeamsTable> = {};
  if (changes.name !== undefined) set.name = stripNul(changes.name);
  if (changes.tier !== undefined) set.tier = stripNulOrNull(changes.tier);
  if (changes.limits !== undefined) set.limits = objectText(changes.limits);
  if (changes.budget !== undefined) set.budget = objectText(changes.budget);
  if (Object.keys(set).length > 0)
    await database.db.updateTable('teams').set(set).where('id', '=', id).execute();
  return getTeam(database, id);
}

/** Deletes a team with no active key; `blocked` counts the active keys that keep it. */
export async function deleteTeam(
  database: Database,
  id: string,
): Promise<{ deleted: boolean; blocked: number }> {
  return database.db.transaction().execute(async (tx) => {
    const active = await tx
      .selectFrom('virtual_keys')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('team_id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow();
    const blocked = Number(active.n);
    if (blocked > 0) return { deleted: false, blocked };
    const result = await tx.deleteFrom('teams').where('id', '=', id).executeTakeFirst();
    return { deleted: Number(result.numDeletedRows) > 0, blocked: 0 };
  });
}

function fromRow(row: Selectable<TeamsTable>): TeamRow {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    limits: parseObject(`team ${row.id}`, 'limits', row.limits) as LimitsConfig | null,
    budget: parseObject(`team ${row.id}`, 'budget', row.budget) as BudgetConfig | null,
    createdAt: Number(row.created_at),
  };
}
