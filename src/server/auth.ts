/**
 * Route-level authentication hooks.
 *
 * Hooks are attached to each route, so authorisation is decided on the route
 * Fastify actually dispatched — never on a path string a client could dress
 * up with `//`, `%2F`, `;` or forwarded-host headers.
 */
import type { Socket } from 'node:net';
import type { AuthenticatedKey, KeyStore } from '../auth/key-store.ts';
import { TokenDigests } from '../auth/token-digests.ts';
import type { UsageRecorder } from '../billing/usage-recorder.ts';
import { GatewayError } from '../core/errors.ts';
import { ATTR } from '../observability/trace-attributes.ts';
import { failAndEnd, type TraceSpan } from '../observability/tracing.ts';
import type { GatewayReply, GatewayRequest } from './exchange.ts';

declare module 'fastify' {
  interface FastifyRequest {
    key: AuthenticatedKey | null;
    /** Set once a model request is accounted for; it then owns the request's metrics. */
    usage: UsageRecorder | null;
  }
}

/**
 * The credential a client sent: `Authorization: Bearer …` or Anthropic's `x-api-key`.
 * Node keeps only the first of repeated Authorization headers (and joins
 * repeated x-api-key ones), so repeats are found in the raw headers and
 * refused: two credentials on one request are ambiguous, never a choice we make.
 */
export function credentialOf(request: GatewayRequest): string | undefined {
  if (hasRepeatedCredential(request.raw.rawHeaders)) {
    throw new GatewayError(
      'invalid_request',
      'More than one Authorization (or x-api-key) header: send exactly one credential',
    );
  }
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.length > 7 && /^bearer /i.test(header)) {
    return header.slice(7).trim();
  }
  const apiKey = request.headers['x-api-key'];
  if (typeof apiKey === 'string' && apiKey.length > 0) return apiKey.trim();
  return undefined;
}

function hasRepeatedCredential(rawHeaders: string[]): boolean {
  let authorization = 0;
  let apiKey = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    // Length first: most header names are ruled out without lower-casing.
    if (name.length === 13 && name.toLowerCase() === 'authorization') authorization++;
    else if (name.length === 9 && name.toLowerCase() === 'x-api-key') apiKey++;
  }
  return authorization > 1 || apiKey > 1;
}

const DIGESTS = Symbol('switchyard.tokenDigests');

/**
 * The request's connection's credential digests (token-digests.ts): kept on
 * the socket, so a kept-alive client's credential is hashed once, not once a request.
 */
function connectionDigests(request: GatewayRequest): TokenDigests | undefined {
  const socket = request.raw.socket as (Socket & { [DIGESTS]?: TokenDigests }) | null;
  if (socket === null) return undefined;
  let digests = socket[DIGESTS];
  if (digests === undefined) {
    digests = new TokenDigests();
    socket[DIGESTS] = digests;
  }
  return digests;
}

const missing = () =>
  new GatewayError(
    'invalid_api_key',
    'Missing API key: send it as "Authorization: Bearer <key>" (or "x-api-key: <key>")',
  );
const invalid = () => new GatewayError('invalid_api_key', 'Invalid API key');

/** The cached key behind the request's credential: 401 when there is none or it is not a live key here. */
function authenticated(keys: KeyStore, request: GatewayRequest): AuthenticatedKey {
  const token = credentialOf(request);
  if (token === undefined) throw missing();
  const key = keys.authenticate(token, Date.now(), connectionDigests(request));
  if (key === null) throw invalid();
  return key;
}

/**
 * As `authenticated`, but a token this process does not know may be a key
 * just created on another instance: then (within the key store's budget) it
 * is looked up in the database, and the answer is a promise.
 */
function authenticatedAnywhere(
  keys: KeyStore,
  request: GatewayRequest,
): AuthenticatedKey | Promise<AuthenticatedKey> {
  const token = credentialOf(request);
  if (token === undefined) throw missing();
  const key = keys.authenticate(token, Date.now(), connectionDigests(request));
  if (key !== null) return key;
  const lookup = keys.lookUpUnknown(token);
  if (lookup === null) throw invalid();
  return lookup.then((found) => {
    if (found === null) throw invalid();
    return found;
  });
}

/**
 * A route hook that sets `request.key` to what `resolve` finds, or fails the
 * request with what it throws (or rejects with). Callback-style: an async hook
 * costs Fastify a promise and a tick per request, paid here only by a lookup.
 */
function keyHook(resolve: (request: GatewayRequest) => AuthenticatedKey | Promise<AuthenticatedKey>) {
  return function authenticate(
    request: GatewayRequest,
    _reply: GatewayReply,
    done: (error?: Error) => void,
  ): void {
    const span = request.trace.child('auth');
    let key: AuthenticatedKey | Promise<AuthenticatedKey>;
    try {
      key = resolve(request);
    } catch (error) {
      authFailed(span, error, done);
      return;
    }
    // The common case answers in the tick, with no closure; only a database lookup makes them.
    if (key instanceof Promise) {
      key.then(
        (found) => authSucceeded(request, span, found, done),
        (error: unknown) => authFailed(span, error, done),
      );
    } else authSucceeded(request, span, key, done);
  };
}

function authSucceeded(
  request: GatewayRequest,
  span: TraceSpan,
  key: AuthenticatedKey,
  done: (error?: Error) => void,
): void {
  request.key = key;
  if (span.recording) traceKey(span, key);
  done();
}

function authFailed(span: TraceSpan, error: unknown, done: (error?: Error) => void): void {
  failAndEnd(span, error);
  done(error as Error);
}

/** Which key (its id, never the secret) on the auth span. */
function traceKey(span: TraceSpan, key: AuthenticatedKey): void {
  span.set(ATTR.keyId, key.isMaster ? 'master' : key.id);
  span.end();
}

export function requireKey(keys: KeyStore) {
  return keyHook((request) => authenticatedAnywhere(keys, request));
}

export function requireMaster(keys: KeyStore) {
  return keyHook((request) => {
    const key = authenticated(keys, request);
    if (!key.isMaster) throw new GatewayError('forbidden', 'This endpoint requires the master key');
    return key;
  });
}
