/**
 * The web dashboard at `/dashboard`: the page and its assets (open to all:
 * they hold no data), sign-in and sign-out, and the JSON the page polls.
 * Every `/dashboard/api/*` endpoint but sign-in takes a session cookie or the
 * master key as a bearer (../dashboard/dashboard-auth.ts).
 *
 * - `POST /dashboard/api/login` `{ "master_key": "…" }`: opens a session.
 * - `POST /dashboard/api/logout`: closes it.
 * - `GET /dashboard/api/session`: the session's CSRF token, expiry, tiers and teams.
 * - `GET /dashboard/api/live`: request rate, latency and TTFT percentiles,
 *   error and cache hit rates, tokens and spend rate, over the last minutes.
 * - `GET /dashboard/api/status`: providers, routing targets, circuit breakers, queue depths.
 * - `GET /dashboard/api/spend?by=model|key|team&range=1h|24h|7d|30d`: spend over time.
 * - `GET /dashboard/api/top-keys?range=…`: keys by spend.
 * - `/dashboard/api/keys[/{id}]` (GET, POST, PATCH, DELETE): the admin key API
 *   (./admin.ts), for the session: the same validation, logs and effects.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.ts';
import { QUEUE_NAMES } from '../../jobs/job-queue.ts';
import { SPEND_GROUPS, type SpendGroup, spendSeries, topSpenders } from '../../ledger/spend-series.ts';
import type { GatewayContext } from '../context.ts';
import { requireDashboard, sessionCookie, sessionIdOf, sessionOf } from '../dashboard/dashboard-auth.ts';
import { LiveStats } from '../dashboard/live-stats.ts';
import { DashboardSessions } from '../dashboard/sessions.ts';
import { loadAssets, SECURITY_HEADERS } from '../dashboard/static-assets.ts';
import { parsedBody } from './admin-body.ts';

const HOUR_MS = 3_600_000;
/** Each range with the bucket width its chart uses (about 60 bars). */
const RANGES: Record<string, { ms: number; bucketMs: number }> = {
  '1h': { ms: HOUR_MS, bucketMs: 60_000 },
  '24h': { ms: 24 * HOUR_MS, bucketMs: 30 * 60_000 },
  '7d': { ms: 7 * 24 * HOUR_MS, bucketMs: 3 * HOUR_MS },
  '30d': { ms: 30 * 24 * HOUR_MS, bucketMs: 12 * HOUR_MS },
};
/** Groups drawn as their own series in the spend chart; the rest are summed as one. */
const SPEND_SERIES = 6;
const TOP_KEYS = 10;

const loginBody = z.strictObject({ master_key: z.string().min(1).max(1_000) });

export function registerDashboardRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const settings = gw.config.dashboard;
  if (!settings.enabled) return;
  const sessions = new DashboardSessions(settings.session_ttl_s * 1000);
  const live = new LiveStats(gw.metrics.registry);
  const assets = loadAssets();
  const onRequest = requireDashboard(gw.keys, sessions);

  // Every dashboard answer: no framing, no sniffing; no caching of data. Per
  // route, so no other route pays for it.
  const onSend = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
    done: (error: null, payload: unknown) => void,
  ): void => {
    reply.headers(SECURITY_HEADERS);
    if (!request.routeOptions.url?.startsWith('/dashboard/assets/'))
      reply.header('cache-control', 'no-store');
    done(null, payload);
  };

  const page = assets.get('index.html')!;
  app.get('/dashboard', { onSend }, async (_request, reply) => reply.type(page.contentType).send(page.body));
  app.get('/dashboard/', async (_request, reply) => reply.redirect('/dashboard', 301));

  app.get('/dashboard/assets/:name', { onSend }, async (request, reply) => {
    const { name } = request.params as { name: string };
    const asset = assets.get(name);
    if (asset === undefined || name === 'index.html') throw new GatewayError('not_found', 'No such asset');
    reply.header('etag', asset.etag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
    return reply.type(asset.contentType).send(asset.body);
  });

  app.post('/dashboard/api/login', { onSend }, async (request, reply) => {
    if (request.headers['sec-fetch-site'] === 'cross-site') {
      throw new GatewayError('forbidden', 'Sign in from the dashboard page itself');
    }
    const { master_key } = parsedBody(loginBody, request.body ?? {});
    const key = gw.keys.authenticate(master_key);
    if (key === null || !key.isMaster) {
      request.log.warn('dashboard sign-in refused');
      throw new GatewayError('invalid_api_key', 'That is not the master key');
    }
    // A sign-in replaces the browser's previous session rather than leaving it alive.
    sessions.destroy(sessionIdOf(request));
    const { id, session } = sessions.create();
    reply.header('set-cookie', sessionCookie(id, settings.session_ttl_s, settings.secure_cookie));
    request.log.info('dashboard sign-in');
    return sessionView(gw, session);
  });

  app.post('/dashboard/api/logout', { onRequest, onSend }, async (request, reply) => {
    sessions.destroy(sessionIdOf(request));
    reply.header('set-cookie', sessionCookie('', 0, settings.secure_cookie));
    return { signed_out: true };
  });

  app.get('/dashboard/api/session', { onRequest, onSend }, async (request) => {
    const session = sessionOf(sessions, request);
    return sessionView(gw, session);
  });

  app.get('/dashboard/api/live', { onRequest, onSend }, async () => live.view());

  app.get('/dashboard/api/status', { onRequest, onSend }, async () => {
    const targets = gw.router.snapshot();
    const breakers = gw.resilience.list();
    const queues = await Promise.all(
      QUEUE_NAMES.map(async (name) => {
        try {
          const { counts, oldestQueuedMs } = await gw.jobs.queue.counts(name);
          return {
            name,
            queued: counts.queued,
            active: counts.active,
            failed: counts.failed,
            oldest_queued_ms: oldestQueuedMs,
            error: null,
          };
        } catch {
          return {
            name,
            queued: null,
            active: null,
            failed: null,
            oldest_queued_ms: null,
            error: 'unavailable',
          };
        }
      }),
    );
    const providers = new Map<string, { name: string; targets: number; available: number }>();
    for (const model of targets) {
      for (const target of model.targets) {
        const provider = providers.get(target.provider) ?? {
          name: target.provider,
          targets: 0,
          available: 0,
        };
        provider.targets++;
        if (target.active && target.available) provider.available++;
        providers.set(target.provider, provider);
      }
    }
    return {
      providers: [...providers.values()],
      models: targets,
      breakers,
      queues,
      draining: gw.state.draining,
      uptime_s: Math.round((Date.now() - gw.state.startedAt) / 1000),
    };
  });

  app.get('/dashboard/api/spend', { onRequest, onSend }, async (request) => {
    const query = request.query as Record<string, unknown>;
    const by = spendGroupOf(query['by']);
    const range = rangeOf(query['range']);
    const toMs = Math.ceil(Date.now() / range.bucketMs) * range.bucketMs;
    const fromMs = toMs - range.ms;
    const result = await spendSeries(gw.database, {
      groupBy: by,
      fromMs,
      toMs,
      bucketMs: range.bucketMs,
      top: SPEND_SERIES,
    });
    const names = by === 'model' ? undefined : await namesOf(gw, by);
    return {
      by,
      bucket_ms: range.bucketMs,
      buckets: result.buckets,
      series: result.series.map((s) => ({
        group: s.group,
        label: names?.get(s.group) ?? s.group,
        total_usd: s.total_micros / 1_000_000,
        usd: s.micros.map((m) => m / 1_000_000),
      })),
    };
  });

  app.get('/dashboard/api/top-keys', { onRequest, onSend }, async (request) => {
    const range = rangeOf((request.query as Record<string, unknown>)['range']);
    const toMs = Date.now();
    const rows = await topSpenders(gw.database, {
      groupBy: 'key',
      fromMs: toMs - range.ms,
      toMs,
      limit: TOP_KEYS,
    });
    const names = await namesOf(gw, 'key');
    return {
      data: rows.map((row) => ({
        key_id: row.group,
        name: names.get(row.group) ?? row.group,
        requests: row.requests,
        tokens: row.tokens,
        cost_usd: row.cost_micros / 1_000_000,
      })),
    };
  });

  // Key management: the admin API itself, reached in-process with the master
  // key once the session (and for changes its CSRF token) has been checked,
  // so the dashboard can never do more, or validate less, than the API.
  const forward =
    (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: (request: FastifyRequest) => string) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      const masterKey = gw.config.master_key;
      if (masterKey === undefined) throw new GatewayError('forbidden', 'No master key is configured');
      const response = await app.inject({
        method,
        url: path(request),
        headers: {
          authorization: `Bearer ${masterKey}`,
          ...(method === 'POST' || method === 'PATCH' ? { 'content-type': 'application/json' } : {}),
        },
        ...(method === 'POST' || method === 'PATCH' ? { payload: JSON.stringify(request.body ?? {}) } : {}),
      });
      return reply.code(response.statusCode).type('application/json; charset=utf-8').send(response.body);
    };
  const keyPath = (request: FastifyRequest): string =>
    `/admin/keys/${encodeURIComponent((request.params as { id: string }).id)}`;
  app.get(
    '/dashboard/api/keys',
    { onRequest, onSend },
    forward('GET', () => '/admin/keys'),
  );
  app.post(
    '/dashboard/api/keys',
    { onRequest, onSend },
    forward('POST', () => '/admin/keys'),
  );
  app.patch('/dashboard/api/keys/:id', { onRequest, onSend }, forward('PATCH', keyPath));
  app.delete('/dashboard/api/keys/:id', { onRequest, onSend }, forward('DELETE', keyPath));
}

function sessionView(gw: GatewayContext, session: { csrfToken: string; expiresAt: number } | undefined) {
  return {
    // Absent for a bearer caller: it needs no token.
    csrf_token: session?.csrfToken ?? null,
    expires_at: session === undefined ? null : new Date(session.expiresAt).toISOString(),
    tiers: Object.keys(gw.config.tiers),
  };
}

/** Display names of keys or teams by id (ids the ledger holds may belong to deleted ones). */
async function namesOf(gw: GatewayContext, by: 'key' | 'team'): Promise<Map<string, string>> {
  const names = new Map<string, string>([
    ['master', 'master key'],
    ['none', 'no team'],
  ]);
  if (by === 'key') for (const key of await gw.keys.list()) names.set(key.id, key.name);
  else for (const team of await gw.keys.listTeams()) names.set(team.id, team.name);
  return names;
}

function spendGroupOf(value: unknown): SpendGroup {
  if (value === undefined) return 'model';
  if (typeof value === 'string' && (SPEND_GROUPS as readonly string[]).includes(value))
    return value as SpendGroup;
  throw new GatewayError('invalid_request', `by: expected one of ${SPEND_GROUPS.join(', ')}`, {
    param: 'by',
  });
}

function rangeOf(value: unknown): { ms: number; bucketMs: number } {
  if (value === undefined) return RANGES['24h']!;
  const range = typeof value === 'string' ? RANGES[value] : undefined;
  if (range === undefined) {
    throw new GatewayError('invalid_request', `range: expected one of ${Object.keys(RANGES).join(', ')}`, {
      param: 'range',
    });
  }
  return range;
}
