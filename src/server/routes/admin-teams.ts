/**
 * Admin API: teams. A team has a name, a tier, limits and a budget that its
 * keys share, counted across all of them (a key belongs to one team: `team_id`
 * on POST or PATCH /admin/keys). Master key only. Changes reach every
 * instance through the key channel, as key changes do.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { budgetSchema, limitsSchema, tierName } from '../../config/limits-schema.ts';
import { GatewayError } from '../../core/errors.ts';
import { requireMaster } from '../auth.ts';
import type { GatewayContext } from '../context.ts';
import { auditOf } from './admin-audit.ts';
import { parsedBody } from './admin-body.ts';

const teamFields = {
  name: z.string().min(1).max(200),
  tier: tierName.nullish(),
  limits: limitsSchema.nullish(),
  budget: budgetSchema.nullish(),
};
const createTeamBody = z.strictObject(teamFields);
const updateTeamBody = z.strictObject(teamFields).partial();

export const TEAM_ID = /^team_[a-f0-9]{24}$/;

export function registerAdminTeamRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const onRequest = requireMaster(gw.keys);

  app.post('/admin/teams', { onRequest }, async (request, reply) => {
    const input = parsedBody(createTeamBody, request.body ?? {});
    const team = await gw.keys.createTeam({
      name: input.name,
      tier: input.tier ?? null,
      limits: input.limits ?? null,
      budget: input.budget ?? null,
    });
    await gw.keySync.publish(team.id);
    request.log.info({ teamId: team.id, name: team.name }, 'team created');
    await auditOf(gw, request, {
      action: 'team.create',
      targetType: 'team',
      targetId: team.id,
      details: {
        name: team.name,
        tier: input.tier ?? null,
        limits: input.limits ?? null,
        budget: input.budget ?? null,
      },
    });
    reply.code(201);
    return team;
  });

  app.get('/admin/teams', { onRequest }, async () => ({ object: 'list', data: await gw.keys.listTeams() }));

  app.get('/admin/teams/:id', { onRequest }, async (request) => {
    const team = TEAM_ID.test(idOf(request.params)) ? await gw.keys.getTeam(idOf(request.params)) : undefined;
    if (team === undefined) throw new GatewayError('not_found', 'No such team');
    return team;
  });

  app.patch('/admin/teams/:id', { onRequest }, async (request) => {
    const id = idOf(request.params);
    if (!TEAM_ID.test(id)) throw new GatewayError('not_found', 'No such team');
    const input = parsedBody(updateTeamBody, request.body ?? {});
    const team = await gw.keys.updateTeam(id, {
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.tier !== undefined ? { tier: input.tier } : {}),
      ...(input.limits !== undefined ? { limits: input.limits } : {}),
      ...(input.budget !== undefined ? { budget: input.budget } : {}),
    });
    if (team === undefined) throw new GatewayError('not_found', 'No such team');
    await gw.keySync.publish(id);
    request.log.info({ teamId: id, changed: Object.keys(input) }, 'team changed');
    await auditOf(gw, request, {
      action: 'team.update',
      targetType: 'team',
      targetId: id,
      details: { changed: input },
    });
    return team;
  });

  app.delete('/admin/teams/:id', { onRequest }, async (request) => {
    const id = idOf(request.params);
    if (!TEAM_ID.test(id)) throw new GatewayError('not_found', 'No such team');
    const { deleted, blocked } = await gw.keys.deleteTeam(id);
    if (blocked > 0) {
      throw new GatewayError(
        'invalid_request',
        `The team has ${blocked} active key${blocked === 1 ? '' : 's'}; move them to another team or revoke them first`,
        { param: 'id' },
      );
    }
    if (!deleted) throw new GatewayError('not_found', 'No such team');
    await gw.keySync.publish(id);
    request.log.info({ teamId: id }, 'team deleted');
    await auditOf(gw, request, { action: 'team.delete', targetType: 'team', targetId: id });
    return { id, deleted: true };
  });
}

function idOf(params: unknown): string {
  return (params as { id: string }).id;
}
