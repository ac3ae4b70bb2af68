/**
 * Virtual keys in SQL. Secrets never reach this module: the auth module hashes
 * them and hands over the hash and a 4-character hint.
 */
import type { Selectable } from 'kysely';
import type { BudgetConfig, LimitsConfig } from '../config/limits-schema.ts';
import { objectText, parseObject } from './json-columns.ts';
import { stripNul, stripNulOrNull, type VirtualKeysTable } from './schema.ts';
import type { Database } from './sql.ts';

export interface VirtualKeyRow {
  id: string;
  name: string;
  /** Hex SHA-256 of the secret. */
  keyHash: string;
  /** Last 4 characters of the secret, for display. */
  keyHint: string;
  tier: string | null;
  /** Models this key may use; null means all. */
  allowedModels: string[] | null;
  metadata: Record<string, unknown>;
  /** Epoch ms, or null for never. */
  expiresAt: number | null;
  createdAt: number;
  revokedAt: number | null;
  /** The key's own limits, over its tier's; null: the tier's alone. */
  limits: LimitsConfig | null;
  /** The key's spend caps; null: none. */
  budget: BudgetConfig | null;
  /** The team the key belongs to; null: none. */
  teamId: string | null;
}

export type NewVirtualKey = Omit<VirtualKeyRow, 'revokedAt' | 'limits' | 'budget' | 'teamId'> & {
  revokedAt?: number | null;
  teamId?: string | null;
  limits?: LimitsConfig | null;
  budget?: BudgetConfig | null;
};

/** What `PATCH /admin/keys/:id` may change; a field left out stays as it is. */
export interface KeyChanges {
  name?: string;
  tier?: string | null;
  allowedModels?: string[] | null;
  metadata?: Record<string, unknown>;
  expiresAt?: number | null;
  limits?: LimitsConfig | null;
  budget?: BudgetConfig | null;
  teamId?: string | null;
}

export async function insertKey(database: Database, row: NewVirtualKey): Promise<void> {
  await database.db
    .insertInto('virtual_keys')
    .values({
      id: stripNul(row.id),
      name: stripNul(row.name),
      key_hash: row.keyHash,
      key_hint: stripNul(row.keyHint),
      tier: stripNulOrNull(row.tier),
      allowed_models: allowedModelsText(row.allowedModels),
      metadata: JSON.stringify(row.metadata),
      expires_at: row.expiresAt,
      created_at: row.createdAt,
      revoked_at: row.revokedAt ?? null,
      limits: objectText(row.limits ?? null),
      budget: objectText(row.budget ?? null),
      team_id: row.teamId ?? null,
    })
    .execute();
}

/** Applies `changes` to an active key; returns the updated row, or undefined when there is no such active key. */
export async function updateKey(
  database: Database,
  id: string,
  changes: KeyChanges,
): Promise<VirtualKeyRow | undefined> {
  const set: Partial<VirtualKeysTable> = {};
  if (changes.name !== undefined) set.name = stripNul(changes.name);
  if (changes.tier !== undefined) set.tier = stripNulOrNull(changes.tier);
  if (changes.allowedModels !== undefined) set.allowed_models = allowedModelsText(changes.allowedModels);
  if (changes.metadata !== undefined) set.metadata = JSON.stringify(changes.metadata);
  if (changes.expiresAt !== undefined) set.expires_at = changes.expiresAt;
  if (changes.limits !== undefined) set.limits = objectText(changes.limits);
  if (changes.budget !== undefined) set.budget = objectText(changes.budget);
  if (changes.teamId !== undefined) set.team_id = changes.teamId;
  if (Object.keys(set).length > 0) {
    const result = await database.db
      .updateTable('virtual_keys')
      .set(set)
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return undefined;
  }
  const row = await getKey(database, id);
  return row === undefined || row.revokedAt !== null ? undefined : row;
}

function allowedModelsText(models: string[] | null): string | null {
  // An empty list means "all models", stored the same way as null.
  // JSON.stringify escapes NUL as the text `\u0000`, so JSON needs no stripping.
  return models === null || models.length === 0 ? null : JSON.stringify(models);
}

/** Every key, revoked ones included; `replica`: read where reads may lag (the admin listing). */
export async function listKeys(database: Database, replica = false): Promise<VirtualKeyRow[]> {
  const query = (db: Database['db']) =>
    db.selectFrom('virtual_keys').selectAll().orderBy('created_at').orderBy('id').execute();
  const rows = await (replica ? database.read(query) : query(database.db));
  return rows.map(fromRow);
}

export async function getKey(database: Database, id: string): Promise<VirtualKeyRow | undefined> {
  const row = await database.db
    .selectFrom('virtual_keys')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
  return row === undefined ? undefined : fromRow(row);
}

export async function getKeyByHash(database: Database, keyHash: string): Promise<VirtualKeyRow | undefined> {
  const row = await database.db
    .selectFrom('virtual_keys')
    .selectAll()
    .where('key_hash', '=', keyHash)
    .executeTakeFirst();
  return row === undefined ? undefined : fromRow(row);
}

/** Marks the key revoked at `at`. Returns false when it does not exist or was already revoked. */
export async function revokeKey(database: Database, id: string, at: number): Promise<boolean> {
  const result = await database.db
    .updateTable('virtual_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Ids of keys revoked at or after `since` (epoch ms). Polled while the key
 * channel is down, with `since` a few minutes back: the answer is a handful of
 * rows, and a scan of a table of keys is cheap at that rate.
 */
export async function listRevokedKeyIdsSince(database: Database, since: number): Promise<string[]> {
  const rows = await database.db
    .selectFrom('virtual_keys')
    .select('id')
    .where('revoked_at', '>=', since)
    .orderBy('id')
    .execute();
  return rows.map((row) => row.id);
}

/**
 * Keys that are not revoked and not expired at `now`. Callers must still check
 * `expiresAt` per request: a key loaded now may expire while cached.
 */
export async function loadActiveKeys(database: Database, now: number): Promise<VirtualKeyRow[]> {
  const rows = await database.db
    .selectFrom('virtual_keys')
    .selectAll()
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now)]))
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map(fromRow);
}

function fromRow(row: Selectable<VirtualKeysTable>): VirtualKeyRow {
  return {
    id: row.id,
    name: row.name,
    keyHash: row.key_hash,
    keyHint: row.key_hint,
    tier: row.tier,
    allowedModels: parseAllowedModels(row.id, row.allowed_models),
    metadata: parseMetadata(row.metadata),
    expiresAt: toNumberOrNull(row.expires_at),
    createdAt: Number(row.created_at),
    revokedAt: toNumberOrNull(row.revoked_at),
    limits: parseObject(`virtual key ${row.id}`, 'limits', row.limits) as LimitsConfig | null,
    budget: parseObject(`virtual key ${row.id}`, 'budget', row.budget) as BudgetConfig | null,
    teamId: row.team_id,
  };
}

function parseAllowedModels(id: string, text: string | null): string[] | null {
  if (text === null || text === '') return null;
  const value: unknown = JSON.parse(text);
  // Fail closed: silently reading a damaged list as "all models" would widen the key.
  if (!Array.isArray(value) || !value.every((m) => typeof m === 'string')) {
    throw new Error(`virtual key ${id}: allowed_models is not a JSON array of strings`);
  }
  return value.length === 0 ? null : value;
}

function parseMetadata(text: string): Record<string, unknown> {
  const value: unknown = JSON.parse(text);
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function toNumberOrNull(value: number | null): number | null {
  return value === null ? null : Number(value);
}
