/**
 * The audit log: who did which admin action to what (a key created, changed or
 * revoked; a team created, changed or deleted; a breaker reset or isolated; the
 * cache cleared…). Each action is one log line with `audit: true` (never
 * sampled) and one `audit_log` row, read back newest first at GET /admin/audit.
 *
 * Details say what changed (names, tiers, budgets, limits, model lists), never a
 * secret: callers pass the request's fields, and a key's secret is not one of
 * them. Admin actions are rare, so the row is written before the answer: an
 * action that was answered is in the table.
 */
import type { Logger } from 'pino';
import type { Database } from '../store/sql.ts';
import { requestId as newId } from '../util/request-id.ts';

export interface AuditEntry {
  /** Who: `master` (the master key), or the authenticated principal's id. */
  actor: string;
  /** What, as `<object>.<verb>`: `key.create`, `key.update`, `key.revoke`, `team.update`, … */
  action: string;
  targetType: 'key' | 'team' | 'breaker' | 'target' | 'cache';
  targetId: string | null;
  /** What changed (no secrets). */
  details?: Record<string, unknown>;
  requestId?: string;
  /** The client's address, for "who" when several people hold the master key. */
  ip?: string;
}

export interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  action: string;
  target_type: string;
  target_id: string | null;
  details: Record<string, unknown>;
  request_id: string | null;
}

export interface AuditQuery {
  limit: number;
  /** Records older than this one (the previous page's `next_cursor`). */
  before?: string | undefined;
  action?: string | undefined;
  targetId?: string | undefined;
}

export class AuditLog {
  readonly #database: Database;
  readonly #logger: Logger;

  constructor(database: Database, logger: Logger) {
    this.#database = database;
    this.#logger = logger;
  }

  async record(entry: AuditEntry): Promise<void> {
    const details = { ...entry.details, ...(entry.ip === undefined ? {} : { ip: entry.ip }) };
    const at = Date.now();
    this.#logger.info(
      {
        audit: true,
        actor: entry.actor,
        action: entry.action,
        targetType: entry.targetType,
        targetId: entry.targetId,
        details,
        ...(entry.requestId === undefined ? {} : { requestId: entry.requestId }),
      },
      `audit: ${entry.action}`,
    );
    try {
      await this.#database.db
        .insertInto('audit_log')
        .values({
          // Time-ordered (UUIDv7): the id breaks ties between actions in one millisecond.
          id: newId(),
          at,
          actor: entry.actor,
          action: entry.action,
          target_type: entry.targetType,
          target_id: entry.targetId,
          details: JSON.stringify(details),
          request_id: entry.requestId ?? null,
        })
        .execute();
    } catch (error) {
      // The action happened; its log line above stands even when the row could not be written.
      this.#logger.error({ err: error, action: entry.action }, 'audit row not written');
    }
  }

  /** Newest first; `next_cursor` pages on. */
  async list(query: AuditQuery): Promise<{ data: AuditRecord[]; next_cursor: string | null }> {
    const rows = await this.#database.read((db) => {
      let q = db.selectFrom('audit_log').selectAll();
      if (query.before !== undefined) q = q.where('id', '<', query.before);
      if (query.action !== undefined) q = q.where('action', '=', query.action);
      if (query.targetId !== undefined) q = q.where('target_id', '=', query.targetId);
      return q
        .orderBy('id', 'desc')
        .limit(query.limit + 1)
        .execute();
    });
    const page = rows.slice(0, query.limit);
    return {
      data: page.map((row) => ({
        id: row.id,
        at: new Date(Number(row.at)).toISOString(),
        actor: row.actor,
        action: row.action,
        target_type: row.target_type,
        target_id: row.target_id,
        details: JSON.parse(row.details) as Record<string, unknown>,
        request_id: row.request_id,
      })),
      next_cursor: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
    };
  }
}
