/**
 * The one JSON body parser of every route (model APIs and admin alike).
 *
 * - An empty body is no body (`undefined`): many clients send
 *   `Content-Type: application/json` on every call, DELETE included, and a
 *   route that needs a body says so itself.
 * - A body nested too deeply, or carrying a prototype-pollution key, is
 *   refused as the client's error naming the field, before any route code
 *   (see core/json-guard.ts), in the route's own error shape.
 */
import type { FastifyInstance } from 'fastify';
import { MEMO_TEXT_CHARS } from '../cache/cache-key.ts';
import { GatewayError } from '../core/errors.ts';
import { jsonProblem, MAX_JSON_DEPTH } from '../core/json-guard.ts';
import { printable } from '../util/printable.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The JSON body's text, as parsed into `body`, when short enough for the
     * cache to remember a key by (cache-key.ts); undefined otherwise: a long
     * text is not kept alive beside its parsed body for nothing.
     */
    bodyText: string | undefined;
  }
}

export function registerJsonBodyParser(app: FastifyInstance): void {
  app.decorateRequest('bodyText', undefined);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    let parsed: ParsedBody;
    try {
      parsed = parseJsonBody(body as string);
    } catch (error) {
      done(error as GatewayError);
      return;
    }
    request.bodyText = parsed.text;
    done(null, parsed.value);
  });
}

/** A request body parsed: its value, and its text when short enough for the cache to key by. */
export interface ParsedBody {
  value: unknown;
  text: string | undefined;
}

/** @throws GatewayError (400) for text that is not JSON, nested too deeply, or carries a prototype key. */
export function parseJsonBody(text: string): ParsedBody {
  if (text.length === 0) return { value: undefined, text: undefined };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError('invalid_request', 'Request body is not valid JSON', { param: 'body' });
  }
  const problem = jsonProblem(value);
  if (problem !== undefined) throw refusal(problem.kind, problem.path, Array.isArray(value));
  return { value, text: text.length <= MEMO_TEXT_CHARS ? text : undefined };
}

function refusal(kind: 'too_deep' | 'prototype_key', path: string[], topIsArray: boolean): GatewayError {
  // The top-level field is what a client can act on; a top-level array is the body itself.
  // Both are the client's own text: echoed bounded and printable.
  const param = topIsArray ? 'body' : printable(path[0] ?? 'body', 100);
  if (kind === 'prototype_key') {
    const where = path.length > 1 ? ` (at ${printable(path.join('.'), 200)})` : '';
    return new GatewayError(
      'invalid_request',
      `${param}: a "${path.at(-1)}" key is not accepted in a request body${where} (prototype pollution)`,
      { param },
    );
  }
  return new GatewayError(
    'invalid_request',
    `${param}: JSON nested more than ${MAX_JSON_DEPTH} levels deep is not accepted`,
    { param },
  );
}
