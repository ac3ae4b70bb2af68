/**
 * Dashboard sign-ins: a random session id (the cookie's value) mapped, in
 * this process's memory only, to its CSRF token and expiry. The master key
 * is checked once at sign-in and never kept: not here, not in the cookie,
 * not in the browser. A restart (or another instance) signs everyone out,
 * which for an operator's page is the safe side.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export interface DashboardSession {
  /** Sent back in `x-csrf-token` on every state change the session makes. */
  readonly csrfToken: string;
  readonly expiresAt: number;
}

/** More live sign-ins than any team of operators has; the oldest goes first beyond it. */
const MAX_SESSIONS = 1_000;

export class DashboardSessions {
  readonly #ttlMs: number;
  readonly #now: () => number;
  /** Keyed by a hash of the id, so a heap dump holds no usable cookie. Map order is creation order. */
  readonly #sessions = new Map<string, DashboardSession>();

  constructor(ttlMs: number, now: () => number = Date.now) {
    this.#ttlMs = ttlMs;
    this.#now = now;
  }

  /** Opens a session; returns its id (for the cookie only) and the session. */
  create(): { id: string; session: DashboardSession } {
    this.#sweep();
    while (this.#sessions.size >= MAX_SESSIONS) {
      const oldest = this.#sessions.keys().next().value!;
      this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const session = {
      csrfToken: randomBytes(32).toString('base64url'),
      expiresAt: this.#now() + this.#ttlMs,
    };
    this.#sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, or undefined (unknown, malformed or expired). */
  get(id: string | undefined): DashboardSession | undefined {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = digest(id);
    const session = this.#sessions.get(key);
    if (session === undefined) return undefined;
    if (session.expiresAt <= this.#now()) {
      this.#sessions.delete(key);
      return undefined;
    }
    return session;
  }

  destroy(id: string | undefined): void {
    if (id !== undefined) this.#sessions.delete(digest(id));
  }

  get size(): number {
    this.#sweep();
    return this.#sessions.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, session] of this.#sessions) {
      if (session.expiresAt <= now) this.#sessions.delete(key);
    }
  }
}

/** Constant-time comparison of a sent CSRF token with the session's. */
export function csrfMatches(session: DashboardSession, sent: unknown): boolean {
  if (typeof sent !== 'string') return false;
  const expected = Buffer.from(session.csrfToken);
  const given = Buffer.from(sent);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function digest(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}
