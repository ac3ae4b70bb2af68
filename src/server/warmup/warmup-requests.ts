/**
 * Warm-up requests (`warmup.requests`): one small chat request to every
 * target of the chosen models at start, so a model server that loads models
 * on demand (vLLM, Ollama) or a provider's cold path is warm before clients
 * arrive (seed 004's prewarm_models).
 *
 * They go straight to each target's adapter: no key, so no key's limits or
 * budget is charged, and no breaker or latency sketch learns from them (a
 * cold model's first answer is exactly the outlier they exist to absorb).
 * Each is recorded in the ledger like any attempt, with route `warmup` and no
 * key, so its cost stays visible in /admin/usage (group_by=key shows it under
 * no key) and is never hidden spend.
 */
import { randomUUID } from 'node:crypto';
import type { AttemptPricer } from '../../billing/attempt-pricer.ts';
import type { WarmupConfig } from '../../config/warmup-schema.ts';
import { toGatewayError } from '../../core/errors.ts';
import type { Usage } from '../../core/types.ts';
import type { UsageLedger } from '../../ledger/usage-ledger.ts';
import type { ModelRoute, RouteTarget } from '../../routing/model-table.ts';

/** The ledger's `route` for warm-up requests. */
export const WARMUP_ROUTE = 'warmup';

export interface WarmupResult {
  model: string;
  target: string;
  ok: boolean;
  errorCode: string | null;
}

export interface WarmupDeps {
  models: ReadonlyMap<string, ModelRoute>;
  ledger: UsageLedger;
  pricer: AttemptPricer;
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Aborts the requests still running (shutdown). */
  signal: AbortSignal;
}

/** Sends one request per target (each target once, under the first model that lists it); never throws. */
export async function sendWarmupRequests(
  settings: WarmupConfig['requests'],
  deps: WarmupDeps,
): Promise<WarmupResult[]> {
  const names = settings.models.length > 0 ? settings.models : [...deps.models.keys()];
  const seen = new Set<string>();
  const work: Array<{ route: ModelRoute; target: RouteTarget }> = [];
  for (const name of names) {
    const route = deps.models.get(name);
    for (const target of route?.targets ?? []) {
      if (seen.has(target.id)) continue;
      seen.add(target.id);
      work.push({ route: route!, target });
    }
  }
  const results = await Promise.all(work.map(({ route, target }) => warmOne(route, target, settings, deps)));
  const failed = results.filter((r) => !r.ok);
  deps.logger.info({ targets: results.length, failed: failed.length }, 'warm-up requests sent');
  return results;
}

async function warmOne(
  route: ModelRoute,
  target: RouteTarget,
  settings: WarmupConfig['requests'],
  deps: WarmupDeps,
): Promise<WarmupResult> {
  const requestId = `warmup-${randomUUID()}`;
  const started = performance.now();
  let usage: Usage | undefined;
  let errorCode: string | null = null;
  let httpStatus = 200;
  try {
    const reply = await target.provider.chat(
      {
        model: target.model,
        messages: [{ role: 'user', content: settings.prompt }],
        max_tokens: settings.max_tokens,
      },
      { signal: deps.signal, requestId, timeouts: route.timeouts },
    );
    usage = reply.usage;
  } catch (error) {
    const failure = toGatewayError(error);
    errorCode = failure.code;
    httpStatus = failure.status;
    if (!deps.signal.aborted) {
      deps.logger.warn(
        { model: route.name, target: target.id, code: failure.code },
        'warm-up request failed (the target stays in service; live traffic and breakers judge it)',
      );
    }
  }
  deps.ledger.record({
    requestId,
    attempt: 1,
    clientRequestId: null,
    keyId: null,
    route: WARMUP_ROUTE,
    modelRequested: route.name,
    provider: target.provider.name,
    modelUsed: target.model,
    status: errorCode === null ? 'ok' : deps.signal.aborted ? 'client_closed' : 'error',
    httpStatus,
    errorCode,
    stream: false,
    promptTokens: usage?.prompt_tokens ?? 0,
    completionTokens: usage?.completion_tokens ?? 0,
    cachedTokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
    reasoningTokens: usage?.completion_tokens_details?.reasoning_tokens ?? 0,
    usageSource: usage === undefined ? 'none' : 'upstream',
    latencyMs: performance.now() - started,
    ttftMs: null,
    cacheStatus: 'bypass',
    // A failed attempt was billed nothing.
    costMicros: usage === undefined ? 0 : deps.pricer.costMicros(target.model, usage),
    createdAt: Date.now(),
  });
  return { model: route.name, target: target.id, ok: errorCode === null, errorCode };
}
