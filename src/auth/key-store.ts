/**
 * Virtual keys, looked up from memory on every request.
 *
 * The database is the source of truth; this process keeps every active key in
 * a Map keyed by hash, so authenticating costs one SHA-256 and one Map lookup
 * and never a query (a per-request query is how gateways exhaust their
 * database connections). An unknown token reaches the database only through
 * `lookUpUnknown`, within a per-process budget (see unknown-token-lookups.ts).
 *
 * Freshness: create/revoke through this process update the Map at once; other
 * instances hear about it through `KeySync` (Redis pub/sub, under a second;
 * while Redis is down, a poll for recent revocations, about 2 s) and, without
 * Redis, through a periodic reload.
 */
import { randomBytes } from 'node:crypto';
import type { BudgetConfig, LimitsConfig } from '../config/limits-schema.ts';
import {
  getKey,
  getKeyByHash,
  insertKey,
  type KeyChanges,
  listKeys,
  listRevokedKeyIdsSince,
  loadActiveKeys,
  revokeKey,
  updateKey,
  type VirtualKeyRow,
} from '../store/keys-repo.ts';
import type { Database } from '../store/sql.ts';
import {
  deleteTeam,
  getTeam,
  insertTeam,
  listTeams,
  type TeamChanges,
  type TeamRow,
  updateTeam,
} from '../store/teams-repo.ts';
import {
  digestsEqual,
  generateSecret,
  hashSecret,
  isPlausibleToken,
  keyHint,
  VIRTUAL_KEY_PREFIX,
} from './secrets.ts';
import type { TokenDigests } from './token-digests.ts';
import { type UnknownTokenLookupOptions, UnknownTokenLookups } from './unknown-token-lookups.ts';

/** Starts the credentials of requests the gateway sends itself (see `internalCredential`). */
const INTERNAL_PREFIX = 'sk-sy-internal-';

export interface AuthenticatedKey {
  readonly id: string;
  readonly name: string;
  readonly tier: string | null;
  /** null = every model. */
  readonly allowedModels: ReadonlySet<string> | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly expiresAt: number | null;
  readonly isMaster: boolean;
  /** The key's own limits, over its tier's; null: the tier's alone (the master key has none). */
  readonly limits: Readonly<LimitsConfig> | null;
  /** The key's spend caps; null: none (the master key has none). */
  readonly budget: Readonly<BudgetConfig> | null;
  /** The team whose limits and budget the key shares; null: none. */
  readonly teamId: string | null;
}

/** A team as requests see it (cached like keys). */
export type Team = Readonly<TeamRow>;

/** What the admin API shows of a team. */
export interface TeamView {
  id: string;
  name: string;
  tier: string | null;
  limits: LimitsConfig | null;
  budget: BudgetConfig | null;
  created_at: string;
}

export interface CreateKeyInput {
  name: string;
  tier?: string | null | undefined;
  allowedModels?: string[] | null | undefined;
  metadata?: Record<string, unknown> | undefined;
  expiresAt?: number | null | undefined;
  limits?: LimitsConfig | null | undefined;
  budget?: BudgetConfig | null | undefined;
  teamId?: string | null | undefined;
}

/** What listing endpoints may show: no secret, no hash. */
export interface KeyView {
  id: string;
  name: string;
  hint: string;
  tier: string | null;
  allowed_models: string[] | null;
  metadata: Record<string, unknown>;
  expires_at: string | null;
  created_at: string;
  revoked_at: string | null;
  limits: LimitsConfig | null;
  budget: BudgetConfig | null;
  team_id: string | null;
}

interface CachedKey {
  hash: string;
  key: AuthenticatedKey;
}

export class KeyStore {
  readonly #database: Database;
  readonly #masterHash: string;
  readonly #byHash = new Map<string, CachedKey>();
  readonly #hashById = new Map<string, string>();
  readonly #master: AuthenticatedKey = Object.freeze({
    id: 'master',
    name: 'master',
    tier: null,
    allowedModels: null,
    metadata: Object.freeze({}),
    expiresAt: null,
    isMaster: true,
    limits: null,
    budget: null,
    teamId: null,
  });
  readonly #teams = new Map<string, Team>();
  readonly #internalSecret = randomBytes(32).toString('base64url');
  readonly #internalHash = hashSecret(this.#internalSecret);
  readonly #unknownLookups: UnknownTokenLookups;
  /** Counts keys dropped from the cache, so a lookup that raced a revocation does not cache the key again. */
  #forgotten = 0;

  constructor(database: Database, masterKey: string, unknownLookups: UnknownTokenLookupOptions = {}) {
    this.#database = database;
    this.#masterHash = hashSecret(masterKey);
    this.#unknownLookups = new UnknownTokenLookups(unknownLookups);
  }

  get size(): number {
    return this.#byHash.size;
  }

  /** Replaces the cache with the database's active keys and every team. */
  async reload(): Promise<void> {
    const teams = await listTeams(this.#database);
    this.#teams.clear();
    for (const team of teams) this.#teams.set(team.id, Object.freeze(team));
    const rows = await loadActiveKeys(this.#database, Date.now());
    const byHash = new Map<string, CachedKey>();
    for (const row of rows) byHash.set(row.keyHash, toCached(row));
    this.#byHash.clear();
    this.#hashById.clear();
    this.#forgotten++;
    for (const [hash, cached] of byHash) {
      this.#byHash.set(hash, cached);
      this.#hashById.set(cached.key.id, hash);
    }
  }

  /** Refreshes one key or team (`team_…`) from the database (after another instance changed it). */
  async refresh(id: string): Promise<void> {
    if (id.startsWith('team_')) {
      const team = await getTeam(this.#database, id);
      if (team === undefined) this.#teams.delete(id);
      else this.#teams.set(id, Object.freeze(team));
      return;
    }
    const row = await getKey(this.#database, id);
    this.#forget(id);
    if (row && row.revokedAt === null) {
      const cached = toCached(row);
      this.#byHash.set(cached.hash, cached);
      this.#hashById.set(id, cached.hash);
    }
  }

  /**
   * Drops every cached key the database says was revoked at or after `since`
   * (epoch ms); returns the ids that were cached, i.e. that this call revoked here.
   */
  async forgetRevokedSince(since: number): Promise<string[]> {
    return this.forgetRevoked(await listRevokedKeyIdsSince(this.#database, since));
  }

  /** Drops these revoked keys from the cache; returns the ids that were cached. */
  forgetRevoked(ids: Iterable<string>): string[] {
    const forgotten: string[] = [];
    for (const id of ids) {
      if (!this.#hashById.has(id)) continue;
      this.#forget(id);
      forgotten.push(id);
    }
    return forgotten;
  }

  /**
   * A credential for a request this process sends through its own pipeline on
   * behalf of key `keyId` (async jobs, batch lines): it authenticates as that
   * key while the key is live (a revoked or expired key's jobs are refused
   * like its requests). Its secret is random per process and never leaves it
   * (internal requests are injected, not sent over a socket).
   */
  internalCredential(keyId: string): string {
    return `${INTERNAL_PREFIX}${this.#internalSecret}.${keyId}`;
  }

  /**
   * Loads key `id` from the database when this process has not cached it (a
   * worker process runs jobs of keys created on other instances since it
   * loaded its cache); a revoked or unknown key stays absent.
   */
  async ensureCached(id: string): Promise<void> {
    if (id === this.#master.id || this.#hashById.has(id)) return;
    await this.refresh(id);
  }

  /** Whether `token` is one of this process's internal credentials (its key aside). */
  isInternal(token: string): boolean {
    if (!token.startsWith(INTERNAL_PREFIX)) return false;
    const dot = token.lastIndexOf('.');
    return dot > 0 && digestsEqual(hashSecret(token.slice(INTERNAL_PREFIX.length, dot)), this.#internalHash);
  }

  /**
   * The key for a bearer token, or null. Never touches the database.
   * `digests` hashes the token (a connection's, remembering its last one; token-digests.ts).
   */
  authenticate(token: string, now: number = Date.now(), digests?: TokenDigests): AuthenticatedKey | null {
    if (!isPlausibleToken(token)) return null;
    if (token.startsWith(INTERNAL_PREFIX)) return this.#internalKey(token, now);
    const hash = digests === undefined ? hashSecret(token) : digests.digest(token);
    if (digestsEqual(hash, this.#masterHash)) return this.#master;
    const cached = this.#byHash.get(hash);
    if (!cached || !digestsEqual(cached.hash, hash)) return null;
    if (cached.key.expiresAt !== null && cached.key.expiresAt <= now) return null;
    return cached.key;
  }

  /**
   * For a token `authenticate` refused: null when that is final, or a lookup
   * of the token's hash in the database (a key created on another instance
   * this one has not heard of yet), within the budget of `UnknownTokenLookups`.
   * A live key found is cached and returned; anything else resolves to null.
   */
  lookUpUnknown(token: string): Promise<AuthenticatedKey | null> | null {
    if (
      !isPlausibleToken(token) ||
      !token.startsWith(VIRTUAL_KEY_PREFIX) ||
      token.startsWith(INTERNAL_PREFIX)
    ) {
      return null;
    }
    const hash = hashSecret(token);
    // Known here: refused for being expired, which a lookup cannot change.
    if (this.#byHash.has(hash) || digestsEqual(hash, this.#masterHash)) return null;
    if (!this.#unknownLookups.admit(hash)) return null;
    return this.#loadByHash(hash).catch(() => null);
  }

  async #loadByHash(hash: string): Promise<AuthenticatedKey | null> {
    const forgottenBefore = this.#forgotten;
    const row = await getKeyByHash(this.#database, hash);
    const now = Date.now();
    if (row === undefined || row.revokedAt !== null) {
      this.#unknownLookups.absent(hash, now);
      return null;
    }
    if (row.teamId !== null && !this.#teams.has(row.teamId)) await this.refresh(row.teamId);
    // A key dropped meanwhile may be this one, revoked after our read: then the
    // cache decides (a refresh that ran meanwhile has the newer row), not our read.
    let cached = this.#byHash.get(hash);
    if (this.#forgotten === forgottenBefore && cached === undefined) {
      cached = toCached(row);
      this.#byHash.set(cached.hash, cached);
      this.#hashById.set(row.id, cached.hash);
    }
    if (cached === undefined) return null;
    return cached.key.expiresAt !== null && cached.key.expiresAt <= now ? null : cached.key;
  }

  #internalKey(token: string, now: number): AuthenticatedKey | null {
    if (!this.isInternal(token)) return null;
    const keyId = token.slice(token.lastIndexOf('.') + 1);
    if (keyId === this.#master.id) return this.#master;
    const hash = this.#hashById.get(keyId);
    const key = hash === undefined ? undefined : this.#byHash.get(hash)?.key;
    if (key === undefined || (key.expiresAt !== null && key.expiresAt <= now)) return null;
    return key;
  }

  isMaster(token: string): boolean {
    return isPlausibleToken(token) && digestsEqual(hashSecret(token), this.#masterHash);
  }

  async create(input: CreateKeyInput): Promise<{ secret: string; key: KeyView }> {
    const secret = generateSecret(VIRTUAL_KEY_PREFIX);
    const now = Date.now();
    const row: VirtualKeyRow = {
      id: `key_${randomBytes(12).toString('hex')}`,
      name: input.name,
      keyHash: hashSecret(secret),
      keyHint: keyHint(secret),
      tier: input.tier ?? null,
      allowedModels: input.allowedModels && input.allowedModels.length > 0 ? input.allowedModels : null,
      metadata: input.metadata ?? {},
      expiresAt: input.expiresAt ?? null,
      createdAt: now,
      revokedAt: null,
      limits: input.limits ?? null,
      budget: input.budget ?? null,
      teamId: input.teamId ?? null,
    };
    await insertKey(this.#database, row);
    const cached = toCached(row);
    this.#byHash.set(cached.hash, cached);
    this.#hashById.set(row.id, cached.hash);
    return { secret, key: toView(row) };
  }

  /** Every key for the admin listing (from a read replica when there is one: it may lag a moment). */
  async list(): Promise<KeyView[]> {
    return (await listKeys(this.#database, true)).map(toView);
  }

  /**
   * Changes an active key in the database and, at once, in this process (other
   * instances hear of it through KeySync); undefined when there is no such active key.
   */
  async update(id: string, changes: KeyChanges): Promise<KeyView | undefined> {
    const row = await updateKey(this.#database, id, changes);
    this.#forget(id);
    if (row === undefined) return undefined;
    const cached = toCached(row);
    this.#byHash.set(cached.hash, cached);
    this.#hashById.set(id, cached.hash);
    return toView(row);
  }

  /** A team by id, from memory (requests read it), or undefined. */
  team(id: string): Team | undefined {
    return this.#teams.get(id);
  }

  async createTeam(input: Omit<TeamRow, 'id' | 'createdAt'>): Promise<TeamView> {
    const row: TeamRow = { ...input, id: `team_${randomBytes(12).toString('hex')}`, createdAt: Date.now() };
    await insertTeam(this.#database, row);
    this.#teams.set(row.id, Object.freeze(row));
    return teamView(row);
  }

  async listTeams(): Promise<TeamView[]> {
    return (await listTeams(this.#database, true)).map(teamView);
  }

  async getTeam(id: string): Promise<TeamView | undefined> {
    const row = await getTeam(this.#database, id, true);
    return row === undefined ? undefined : teamView(row);
  }

  async updateTeam(id: string, changes: TeamChanges): Promise<TeamView | undefined> {
    const row = await updateTeam(this.#database, id, changes);
    if (row === undefined) {
      this.#teams.delete(id);
      return undefined;
    }
    this.#teams.set(id, Object.freeze(row));
    return teamView(row);
  }

  /** Deletes a team that no active key belongs to; `blocked` counts the keys that keep it. */
  async deleteTeam(id: string): Promise<{ deleted: boolean; blocked: number }> {
    const outcome = await deleteTeam(this.#database, id);
    if (outcome.deleted) this.#teams.delete(id);
    return outcome;
  }

  /** Revokes in the database and, at once, in this process. */
  async revoke(id: string): Promise<boolean> {
    const changed = await revokeKey(this.#database, id, Date.now());
    this.#forget(id);
    return changed;
  }

  #forget(id: string): void {
    this.#forgotten++;
    const hash = this.#hashById.get(id);
    if (hash !== undefined) this.#byHash.delete(hash);
    this.#hashById.delete(id);
  }
}

function toCached(row: VirtualKeyRow): CachedKey {
  return {
    hash: row.keyHash,
    key: Object.freeze({
      id: row.id,
      name: row.name,
      tier: row.tier,
      allowedModels: row.allowedModels ? new Set(row.allowedModels) : null,
      metadata: Object.freeze({ ...row.metadata }),
      expiresAt: row.expiresAt,
      isMaster: false,
      limits: row.limits === null ? null : Object.freeze({ ...row.limits }),
      budget: row.budget === null ? null : Object.freeze({ ...row.budget }),
      teamId: row.teamId,
    }),
  };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function toView(row: VirtualKeyRow): KeyView {
  return {
    id: row.id,
    name: row.name,
    hint: row.keyHint,
    tier: row.tier,
    allowed_models: row.allowedModels,
    metadata: row.metadata,
    expires_at: iso(row.expiresAt),
    created_at: iso(row.createdAt)!,
    revoked_at: iso(row.revokedAt),
    limits: row.limits,
    budget: row.budget,
    team_id: row.teamId,
  };
}

export function teamView(row: TeamRow): TeamView {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier,
    limits: row.limits,
    budget: row.budget,
    created_at: iso(row.createdAt)!,
  };
}
