/**
 * Who may use the dashboard's endpoints: a browser signed in with the master
 * key (the session cookie), or any client sending the master key itself as a
 * bearer. A state change made with the cookie must also carry the session's
 * CSRF token in `x-csrf-token` (the cookie is SameSite=Strict as well, two
 * locks on one door): a page elsewhere can make a browser send the cookie,
 * never read the token. A bearer is not ambient, so it needs no token.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { KeyStore } from '../../auth/key-store.ts';
import { GatewayError } from '../../core/errors.ts';
import { credentialOf } from '../auth.ts';
import { csrfMatches, type DashboardSession, type DashboardSessions } from './sessions.ts';

export const SESSION_COOKIE = 'switchyard_dashboard';
export const CSRF_HEADER = 'x-csrf-token';
/** The cookie is sent to the dashboard's own paths only, never to /v1 or /admin. */
export const COOKIE_PATH = '/dashboard';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The session cookie's value, when the request has exactly one. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== SESSION_COOKIE) continue;
    // Two cookies of one name (one planted by a sibling subdomain, say): trust neither.
    if (found !== undefined) return undefined;
    found = part.slice(eq + 1).trim();
  }
  return found;
}

/** The request's live session, or undefined. */
export function sessionOf(
  sessions: DashboardSessions,
  request: FastifyRequest,
): DashboardSession | undefined {
  return sessions.get(sessionIdOf(request));
}

/** The route hook: 401 without a sign-in, 403 for a key that is not the master key or a missing CSRF token. */
export function requireDashboard(keys: KeyStore, sessions: DashboardSessions) {
  return function authenticate(request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) {
    try {
      check(keys, sessions, request);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  };
}

function check(keys: KeyStore, sessions: DashboardSessions, request: FastifyRequest): void {
  const token = credentialOf(request);
  if (token !== undefined) {
    // An explicit credential decides alone: a virtual key never falls back to a cookie.
    const key = keys.authenticate(token);
    if (key === null) throw new GatewayError('invalid_api_key', 'Invalid API key');
    if (!key.isMaster) throw new GatewayError('forbidden', 'The dashboard requires the master key');
    return;
  }
  const session = sessionOf(sessions, request);
  if (session === undefined) {
    throw new GatewayError(
      'invalid_api_key',
      'Sign in to the dashboard with the master key (or send it as "Authorization: Bearer <key>")',
    );
  }
  if (SAFE_METHODS.has(request.method)) return;
  if (request.headers['sec-fetch-site'] === 'cross-site') {
    throw new GatewayError('forbidden', 'Cross-site requests cannot change anything here');
  }
  if (!csrfMatches(session, request.headers[CSRF_HEADER])) {
    throw new GatewayError('forbidden', `Missing or wrong ${CSRF_HEADER} header for this session`);
  }
}

/** The Set-Cookie value that opens (or, with `maxAgeS` 0, clears) the session cookie. */
export function sessionCookie(id: string, maxAgeS: number, secure: boolean): string {
  const parts = [
    `${SESSION_COOKIE}=${id}`,
    `Path=${COOKIE_PATH}`,
    `Max-Age=${maxAgeS}`,
    'HttpOnly',
    'SameSite=Strict',
  ];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}
