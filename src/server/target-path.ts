/**
 * Admin paths that name a routing target: `POST <prefix>/<target id>/<action>`.
 * Target ids are `<provider>/<upstream model>` and contain `/` (upstream model
 * ids may hold more), so such routes are registered as `<prefix>/*` and read
 * here, one way for all of them: the action is the last path segment and the
 * id is everything before it. Clients may send the id URL-encoded
 * (`openai%2Fgpt-4o`) or raw (`openai/gpt-4o`); the router has decoded the
 * path once (`%2F` → `/`), and decoding again would misread a `%` in an id.
 */
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '../core/errors.ts';

export function targetAction<A extends string>(
  request: FastifyRequest,
  actions: readonly A[],
): { id: string; action: A } {
  const rest = (request.params as { '*'?: string })['*'] ?? '';
  const slash = rest.lastIndexOf('/');
  const id = rest.slice(0, Math.max(slash, 0));
  const action = rest.slice(slash + 1) as A;
  if (slash <= 0 || !actions.includes(action)) {
    const prefix = (request.routeOptions.url ?? '').replace(/\/\*$/, '');
    throw new GatewayError('not_found', `Expected POST ${prefix}/{id}/${actions.join(' or /')}`);
  }
  return { id, action };
}
