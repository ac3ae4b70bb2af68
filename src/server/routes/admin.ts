/**
 * Admin API: virtual keys and circuit breakers. Master key only (checked per route).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { budgetSchema, limitsSchema, tierName } from '../../config/limits-schema.ts';
import { GatewayError } from '../../core/errors.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { targetAction } from '../target-path.ts';
import { auditOf } from './admin-audit.ts';
import { parsedBody } from './admin-body.ts';
import { TEAM_ID } from './admin-teams.ts';

const BREAKER_ACTIONS = ['reset', 'isolate'] as const;

const keyFields = {
  name: z.string().min(1).max(200),
  tier: tierName.nullish(),
  models: z.array(z.string().min(1).max(200)).max(1000).nullish(),
  metadata: z.record(z.string().max(200), z.unknown()).optional(),
  /** ISO-8601 time or epoch milliseconds. */
  expires_at: z.union([z.iso.datetime({ offset: true }), z.number().int().positive()]).nullish(),
  /** The key's own limits, over its tier's (null: the tier's alone). */
  limits: limitsSchema.nullish(),
  /** The key's spend caps in USD (null: none). */
  budget: budgetSchema.nullish(),
  /** The team whose limits and budget the key shares (null: none). */
  team_id: z.string().regex(TEAM_ID, { error: 'expected a team id (team_…)' }).nullish(),
};

const createKeyBody = z.strictObject(keyFields);
/** Every field optional: what is sent changes, the rest stays. */
const updateKeyBody = z.strictObject(keyFields).partial();

const KEY_ID = /^key_[a-f0-9]{24}$/;

export function registerAdminRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  /** 400 unless `id` (when given) names an existing team. */
  const knownTeam = (id: string | null | undefined): void => {
    if (id !== undefined && id !== null && gw.keys.team(id) === undefined) {
      throw new GatewayError('invalid_request', 'team_id: no such team', { param: 'team_id' });
    }
  };

  app.post('/admin/keys', { onRequest }, async (request, reply) => {
    const input = parsedBody(createKeyBody, request.body ?? {});
    knownTeam(input.team_id);
    const { secret, key } = await gw.keys.create({
      name: input.name,
      tier: input.tier ?? null,
      allowedModels: input.models ?? null,
      metadata: input.metadata ?? {},
      expiresAt: futureTime(input.expires_at),
      limits: input.limits ?? null,
      budget: input.budget ?? null,
      teamId: input.team_id ?? null,
    });
    await gw.keySync.publish(key.id);
    request.log.info({ keyId: key.id, name: key.name }, 'virtual key created');
    await auditOf(gw, request, {
      action: 'key.create',
      targetType: 'key',
      targetId: key.id,
      details: {
        name: key.name,
        tier: key.tier,
        models: input.models ?? null,
        team_id: input.team_id ?? null,
        limits: input.limits ?? null,
        budget: input.budget ?? null,
        expires_at: input.expires_at ?? null,
      },
    });
    reply.code(201);
    // The only time the secret is ever shown.
    return { ...key, key: secret };
  });

  app.get('/admin/keys', { onRequest }, async () => ({ object: 'list', data: await gw.keys.list() }));

  // Changes tier, limits, budget, team, models, name, metadata or expiry; every instance applies it within a second.
  app.patch('/admin/keys/:id', { onRequest }, async (request) => {
    const { id } = request.params as { id: string };
    if (!KEY_ID.test(id)) throw new GatewayError('not_found', 'No such key');
    const input = parsedBody(updateKeyBody, request.body ?? {});
    knownTeam(input.team_id);
    const key = await gw.keys.update(id, {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.tier !== undefined ? { tier: input.tier } : {}),
      ...(input.models !== undefined ? { allowedModels: input.models } : {}),
      ...(input.metadata !== undefined ? { metadata: input.metadata } : {}),
      ...(input.expires_at !== undefined ? { expiresAt: futureTime(input.expires_at) } : {}),
      ...(input.limits !== undefined ? { limits: input.limits } : {}),
      ...(input.budget !== undefined ? { budget: input.budget } : {}),
      ...(input.team_id !== undefined ? { teamId: input.team_id } : {}),
    });
    if (key === undefined) throw new GatewayError('not_found', 'No such active key');
    await gw.keySync.publish(id);
    request.log.info({ keyId: id, changed: Object.keys(input) }, 'virtual key changed');
    // Budget and tier changes are what an auditor looks for: the new values, field by field.
    // Metadata is the caller's free-form data: its field names are recorded, not its values.
    const { metadata, ...changed } = input;
    await auditOf(gw, request, {
      action: 'key.update',
      targetType: 'key',
      targetId: id,
      details: { changed, ...(metadata === undefined ? {} : { metadata_fields: Object.keys(metadata) }) },
    });
    return key;
  });

  app.delete('/admin/keys/:id', { onRequest }, async (request) => {
    const { id } = request.params as { id: string };
    if (!KEY_ID.test(id)) throw new GatewayError('not_found', 'No such key');
    const revoked = await gw.keys.revoke(id);
    if (!revoked) throw new GatewayError('not_found', 'No such active key');
    await gw.keySync.publish(id);
    request.log.info({ keyId: id }, 'virtual key revoked');
    await auditOf(gw, request, { action: 'key.revoke', targetType: 'key', targetId: id });
    return { id, revoked: true };
  });

  // Invalidates cached answers: all, one model's, one key's, or one model's for one key.
  app.delete('/admin/cache', { onRequest }, async (request) => {
    const query = request.query as { model?: unknown; key_id?: unknown };
    const model = optionalText(query.model, 'model');
    const keyId = optionalText(query.key_id, 'key_id');
    if (keyId !== undefined && !/^key_[a-f0-9]{24}$/.test(keyId) && keyId !== 'master') {
      throw new GatewayError('invalid_request', 'key_id: expected a key id (key_…) or "master"', {
        param: 'key_id',
      });
    }
    if (gw.cache === undefined) return { deleted: {} };
    const filter = { model, scope: keyId === undefined ? undefined : `key:${keyId}` };
    let deleted: Record<string, number>;
    try {
      deleted = await gw.cache.invalidate(filter);
      // This instance's semantic index forgets the prompts too (other instances hear of it below).
      if (gw.semantic !== undefined) deleted['semantic'] = gw.semantic.invalidate(filter);
    } catch {
      throw new GatewayError('store_unavailable', 'The cache could not be cleared in every tier; try again');
    }
    // Other instances drop the same entries from their own memory; how many heard it is reported.
    let instances: number | undefined;
    if (gw.cacheInvalidations !== undefined) {
      try {
        instances = await gw.cacheInvalidations.publish(filter);
      } catch {
        throw new GatewayError(
          'store_unavailable',
          'The shared tiers were cleared but other instances could not be told; try again',
        );
      }
    }
    request.log.info({ model, keyId, deleted, instances }, 'response cache invalidated');
    await auditOf(gw, request, {
      action: 'cache.invalidate',
      targetType: 'cache',
      targetId: null,
      details: { model: model ?? null, key_id: keyId ?? null, deleted },
    });
    return instances === undefined ? { deleted } : { deleted, instances };
  });

  app.get('/admin/breakers', { onRequest }, async () => ({
    object: 'list',
    data: gw.resilience.list(),
  }));

  // Target ids contain '/': URL-encoded (`openai%2Fgpt-4o`) or raw (../target-path.ts).
  // `isolate` holds the target out of traffic on every instance (no probes) until a `reset`.
  app.post('/admin/breakers/*', { onRequest }, async (request) => {
    const { id, action } = targetAction(request, BREAKER_ACTIONS);
    const breaker = gw.resilience.breaker(id);
    if (!breaker) throw new GatewayError('not_found', 'No circuit breaker for that target');
    if (action === 'reset') {
      await breaker.reset();
      request.log.info({ target: id }, 'circuit breaker reset');
    } else {
      await breaker.isolate();
      request.log.warn({ target: id }, 'circuit breaker isolated');
    }
    await auditOf(gw, request, { action: `breaker.${action}`, targetType: 'breaker', targetId: id });
    return { id, state: breaker.state };
  });
}

/** An expiry (ISO-8601 or epoch ms) as epoch ms, null for none; 400 when it has already passed. */
function futureTime(value: string | number | null | undefined): number | null {
  if (value === undefined || value === null) return null;
  const at = typeof value === 'number' ? value : Date.parse(value);
  // A key born expired is a mistake in the request (a unit or a clock), not a key to hand out.
  if (at <= Date.now()) {
    throw new GatewayError('invalid_request', 'expires_at: is in the past; expected a future time', {
      param: 'expires_at',
    });
  }
  return at;
}

function optionalText(value: unknown, param: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new GatewayError('invalid_request', `${param}: expected one non-empty value`, { param });
  }
  return value;
}
