/**
 * `switchyard import litellm`: a LiteLLM proxy config (already parsed from
 * YAML) in, an equivalent Switchyard config and a report of every setting
 * out. Pure: no files, no environment; the CLI does the I/O.
 *
 * The mapping (README "Importing a LiteLLM config"):
 * - deployments sharing a `model_name` → targets of one model; providers are
 *   deduplicated by type, endpoint and key;
 * - `routing_strategy` → `strategy` (see STRATEGIES for each approximation);
 * - `fallbacks` / `default_fallbacks` / `context_window_fallbacks` → the
 *   fallback models as `{ group, role: backup }` targets, in order (inlined
 *   when a group target would close a cycle, which Switchyard refuses);
 * - `num_retries`, `timeout`, `allowed_fails`, `cooldown_time` → retries,
 *   timeouts and the circuit breaker of every model;
 * - `cache` / `cache_params` → `models.<name>.cache` and the `cache` section;
 * - Redis settings → `storage.redis_url`; `master_key`, `database_url` as is.
 */
import { stringify } from 'yaml';
import { type Deployment, readDeployments } from './deployments.ts';
import { ImportReport, type ImportReportEntry } from './report.ts';
import { booleanValue, envName, envVar, isMapping, numberValue, secondsToMs, stringValue } from './values.ts';

export class LiteLLMImportError extends Error {
  override readonly name = 'LiteLLMImportError';
}

export interface LiteLLMImportResult {
  /** The Switchyard config, as it would be written in switchyard.yaml (with `${VAR}` references). */
  config: Record<string, unknown>;
  /** The same, as YAML with a header. */
  yaml: string;
  report: ImportReportEntry[];
}

export interface LiteLLMImportOptions {
  /** The file read, named in the output's header. */
  source?: string;
}

type Strategy = 'weighted' | 'least-latency' | 'cost';

/** LiteLLM's routing strategies, and how each is carried over. */
const STRATEGIES: Record<string, { strategy: Strategy; weightBy: 'weight' | 'capacity'; how?: string }> = {
  'simple-shuffle': { strategy: 'weighted', weightBy: 'weight' },
  'least-busy': {
    strategy: 'least-latency',
    weightBy: 'weight',
    how: 'least-latency: Switchyard has no in-flight count per deployment; a busy deployment answers slower and is chosen less',
  },
  'usage-based-routing': {
    strategy: 'weighted',
    weightBy: 'capacity',
    how: 'weighted by each deployment’s rpm (else tpm), with its limits: traffic leaves a deployment near its limit instead of going to the least used one',
  },
  'usage-based-routing-v2': {
    strategy: 'weighted',
    weightBy: 'capacity',
    how: 'weighted by each deployment’s rpm (else tpm), with its limits: traffic leaves a deployment near its limit instead of going to the least used one',
  },
  'latency-based-routing': { strategy: 'least-latency', weightBy: 'weight' },
  'cost-based-routing': { strategy: 'cost', weightBy: 'weight' },
};

/** Keys a demanding reader expects an explanation for rather than "no equivalent". */
const KNOWN_REASONS: Record<string, string> = {
  success_callback:
    'Switchyard logs JSON lines and exports OpenTelemetry traces and Prometheus metrics instead',
  failure_callback:
    'Switchyard logs JSON lines and exports OpenTelemetry traces and Prometheus metrics instead',
  callbacks: 'Switchyard logs JSON lines and exports OpenTelemetry traces and Prometheus metrics instead',
  service_callbacks:
    'Switchyard logs JSON lines and exports OpenTelemetry traces and Prometheus metrics instead',
  drop_params: 'Switchyard has no switch for this; each adapter translates requests to its provider',
  store_model_in_db: 'Switchyard reads its models from the config file only',
  alerting: 'Switchyard sends budget alerts as signed webhooks (webhooks.alert_url)',
  content_policy_fallbacks: 'Switchyard does not fall back on content-policy refusals',
  retry_policy: 'Switchyard retries by error class, not per exception type',
  allowed_fails_policy: 'Switchyard counts every upstream failure alike',
  routing_strategy_args: 'Switchyard tunes its strategies itself',
  max_fallbacks: 'Switchyard bounds fallback nesting at 16 levels',
};

export function importLiteLLMConfig(input: unknown, options: LiteLLMImportOptions = {}): LiteLLMImportResult {
  if (!isMapping(input)) throw new LiteLLMImportError('expected a LiteLLM config: a mapping with model_list');
  if (!Array.isArray(input['model_list'])) {
    throw new LiteLLMImportError('expected a LiteLLM config: model_list (a list of deployments) is missing');
  }
  const report = new ImportReport();
  const router = section(input, 'router_settings', report);
  const settings = section(input, 'litellm_settings', report);
  const general = section(input, 'general_settings', report);
  const used = { router: new Set<string>(), settings: new Set<string>(), general: new Set<string>() };
  /** The router's value, else litellm_settings' (the proxy passes both to its router; the router's wins). */
  const setting = (key: string): { value: unknown; path: string } | undefined => {
    if (router[key] !== undefined) {
      used.router.add(key);
      if (settings[key] !== undefined) {
        used.settings.add(key);
        report.notTranslated(`litellm_settings.${key}`, `router_settings.${key} takes precedence`);
      }
      return { value: router[key], path: `router_settings.${key}` };
    }
    if (settings[key] !== undefined) {
      used.settings.add(key);
      return { value: settings[key], path: `litellm_settings.${key}` };
    }
    return undefined;
  };

  const { groups, providers } = readDeployments(input['model_list'], report);
  const models: Record<string, Record<string, unknown>> = {};
  const limits: Record<string, Record<string, number>> = {};

  // Strategy.
  const strategySetting = setting('routing_strategy');
  const strategyName = typeof strategySetting?.value === 'string' ? strategySetting.value : 'simple-shuffle';
  let strategy = STRATEGIES[strategyName];
  if (strategySetting) {
    if (strategy === undefined) {
      report.approximated(
        strategySetting.path,
        `'${strategyName}' is not known: weighted (as simple-shuffle)`,
      );
    } else if (strategy.how) report.approximated(strategySetting.path, `strategy: ${strategy.how}`);
    else {
      report.translated(
        strategySetting.path,
        `strategy: ${strategy.strategy} on every model with several deployments (fallback, i.e. config order, on the others)`,
      );
    }
  }
  strategy ??= STRATEGIES['simple-shuffle']!;

  // rpm/tpm are hard caps in LiteLLM only with usage-based routing or pre-call checks.
  const preCall = setting('optional_pre_call_checks');
  const enablePreCall = setting('enable_pre_call_checks');
  const enforcesLimits =
    strategy.weightBy === 'capacity' ||
    booleanValue(enablePreCall?.value) === true ||
    (Array.isArray(preCall?.value) && preCall.value.includes('enforce_model_rate_limits'));
  if (enablePreCall) {
    report.approximated(
      enablePreCall.path,
      'rpm/tpm caps: each model is limited to the sum of its deployments’ rpm/tpm (limits.models); context-window checks come from model_info.max_input_tokens',
    );
  }
  if (preCall) {
    report.approximated(
      preCall.path,
      enforcesLimits
        ? 'enforce_model_rate_limits: each model is limited to the sum of its deployments’ rpm/tpm (limits.models)'
        : 'no Switchyard equivalent for these checks',
    );
  }

  // Resilience settings shared by every model.
  const resilience = readResilience(setting, report);

  for (const [name, deployments] of groups) {
    // One deployment has nothing to balance: config order, so its fallbacks keep theirs.
    const model: Record<string, unknown> = {
      strategy: deployments.length > 1 ? strategy.strategy : 'fallback',
    };
    model['targets'] = targetsOf(name, deployments, strategy.weightBy, report);
    const timeouts = timeoutsOf(deployments, resilience.totalMs, resilience.streamMs);
    if (timeouts) model['timeouts'] = timeouts;
    const retries = resilience.retries ?? maxOf(deployments.map((d) => d.maxRetries));
    if (retries !== undefined) model['retries'] = { max: Math.min(10, retries) };
    if (resilience.breaker) model['circuit_breaker'] = { ...resilience.breaker };
    if (enforcesLimits) {
      const cap = capOf(deployments);
      if (cap) limits[name] = cap;
    }
    models[name] = model;
  }
  if (Object.keys(limits).length > 0) {
    report.approximated(
      'model_list[*].litellm_params.rpm/tpm',
      `hard caps as LiteLLM enforces them: limits.models.<name> at the sum of the deployments’ limits (${Object.keys(limits).join(', ')})`,
    );
  }

  addFallbacks(models, setting, report);
  addAliases(models, setting, report);

  const out: Record<string, unknown> = {};
  const storage: Record<string, unknown> = {};
  const redisUrl = redisFrom(router, 'router_settings', used.router, report);
  const cacheSection = readCache(models, settings, used.settings, setting, report);
  const cacheRedis = cacheSection.redisUrl;
  if (redisUrl ?? cacheRedis) storage['redis_url'] = redisUrl ?? cacheRedis;
  if (cacheSection.needsRedis && !storage['redis_url']) {
    report.approximated(
      'litellm_settings.cache_params.type',
      'redis: no host given (LiteLLM reads REDIS_HOST); set REDIS_URL for the gateway, else answers are cached in-process only',
    );
  }
  readGeneral(general, used.general, out, storage, report);
  readLogging(settings, used.settings, out, report);
  const gatewayConcurrency = numberValue(
    settings['max_parallel_requests'] ?? general['global_max_parallel_requests'],
  );
  if (general['global_max_parallel_requests'] !== undefined) {
    used.general.add('global_max_parallel_requests');
    report.translated('general_settings.global_max_parallel_requests', 'limits.gateway.max_concurrent');
  }
  if (settings['max_parallel_requests'] !== undefined) {
    used.settings.add('max_parallel_requests');
    report.translated('litellm_settings.max_parallel_requests', 'limits.gateway.max_concurrent');
  }

  // Whatever was not read above.
  for (const [name, values, seen] of [
    ['router_settings', router, used.router],
    ['litellm_settings', settings, used.settings],
    ['general_settings', general, used.general],
  ] as const) {
    for (const key of Object.keys(values)) {
      if (!seen.has(key))
        report.notTranslated(`${name}.${key}`, KNOWN_REASONS[key] ?? 'no Switchyard equivalent');
    }
  }
  for (const key of Object.keys(input)) {
    if (['model_list', 'router_settings', 'litellm_settings', 'general_settings'].includes(key)) continue;
    report.notTranslated(
      key,
      key === 'environment_variables' ? 'set these in the gateway’s environment' : 'no Switchyard equivalent',
    );
  }

  if (cacheSection.cache) out['cache'] = cacheSection.cache;
  if (Object.keys(storage).length > 0) out['storage'] = storage;
  const limitsSection: Record<string, unknown> = {};
  if (gatewayConcurrency !== undefined && gatewayConcurrency >= 1) {
    limitsSection['gateway'] = { max_concurrent: Math.floor(gatewayConcurrency) };
  }
  if (Object.keys(limits).length > 0) limitsSection['models'] = limits;
  if (Object.keys(limitsSection).length > 0) out['limits'] = limitsSection;
  out['providers'] = providers;
  out['models'] = models;

  const header = [
    `# Switchyard config imported from ${options.source ?? 'a LiteLLM config'} by \`switchyard import litellm\`.`,
    '# The import report (printed with it) says what each LiteLLM setting became;',
    '# README "Importing a LiteLLM config" has the mapping. Check it: switchyard check-config --config <this file>',
  ].join('\n');
  return {
    config: out,
    yaml: `${header}\n${stringify(out, { lineWidth: 0 })}`,
    report: report.entries,
  };
}

function section(
  input: Record<string, unknown>,
  name: string,
  report: ImportReport,
): Record<string, unknown> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (isMapping(value)) return value;
  report.notTranslated(name, 'expected a mapping');
  return {};
}

type SettingReader = (key: string) => { value: unknown; path: string } | undefined;

interface Resilience {
  retries: number | undefined;
  totalMs: number | undefined;
  streamMs: number | undefined;
  breaker: Record<string, unknown> | undefined;
}

function readResilience(setting: SettingReader, report: ImportReport): Resilience {
  const result: Resilience = {
    retries: undefined,
    totalMs: undefined,
    streamMs: undefined,
    breaker: undefined,
  };
  const retries = setting('num_retries');
  if (retries) {
    const n = numberValue(retries.value);
    if (n === undefined || n < 0) report.notTranslated(retries.path, 'expected a whole number ≥ 0');
    else {
      result.retries = Math.round(n);
      report.approximated(
        retries.path,
        `retries.max: ${Math.min(10, result.retries)} on every model${n > 10 ? ' (Switchyard allows at most 10)' : ''}; Switchyard retries each target that many times, then moves to the next target without counting it as a retry, all within the fleet-wide retry budget`,
      );
    }
  }
  const routerTimeout = setting('timeout');
  const requestTimeout = setting('request_timeout');
  if (routerTimeout && requestTimeout) {
    report.notTranslated(requestTimeout.path, `${routerTimeout.path} takes precedence`);
  }
  const timeout = routerTimeout ?? requestTimeout;
  if (timeout) {
    result.totalMs = secondsToMs(timeout.value);
    if (result.totalMs === undefined) report.notTranslated(timeout.path, 'expected seconds > 0');
    else report.translated(timeout.path, `timeouts.total_ms: ${result.totalMs} on every model`);
  }
  const streamTimeout = setting('stream_timeout');
  if (streamTimeout) {
    result.streamMs = secondsToMs(streamTimeout.value);
    if (result.streamMs === undefined) report.notTranslated(streamTimeout.path, 'expected seconds > 0');
    else {
      report.approximated(
        streamTimeout.path,
        `timeouts.first_byte_ms and idle_ms: ${result.streamMs} (the wait for the first byte and between chunks)`,
      );
    }
  }
  const breaker: Record<string, unknown> = {};
  const allowedFails = setting('allowed_fails');
  if (allowedFails) {
    const n = numberValue(allowedFails.value);
    if (n === undefined || n < 0) report.notTranslated(allowedFails.path, 'expected a whole number ≥ 0');
    else {
      breaker['failure_threshold'] = Math.round(n) + 1;
      breaker['window_ms'] = 60_000;
      report.approximated(
        allowedFails.path,
        `circuit_breaker.failure_threshold: ${Math.round(n) + 1} (a target is taken out after ${Math.round(n) + 1} failures in a row; LiteLLM counts failures per minute), window_ms: 60000`,
      );
    }
  }
  const cooldown = setting('cooldown_time');
  if (cooldown) {
    const ms = secondsToMs(cooldown.value);
    if (ms === undefined) report.notTranslated(cooldown.path, 'expected seconds > 0');
    else {
      breaker['recovery_timeout_ms'] = ms;
      report.translated(
        cooldown.path,
        `circuit_breaker.recovery_timeout_ms: ${ms} (then one probe request decides whether it is back)`,
      );
    }
  }
  const disable = setting('disable_cooldowns');
  if (disable) {
    if (booleanValue(disable.value) === true) {
      breaker['enabled'] = false;
      report.translated(disable.path, 'circuit_breaker.enabled: false');
    } else report.translated(disable.path, 'circuit breakers stay on (the default)');
  }
  if (Object.keys(breaker).length > 0) result.breaker = breaker;
  return result;
}

/** Each deployment's target with its weight and role. */
function targetsOf(
  name: string,
  deployments: Deployment[],
  weightBy: 'weight' | 'capacity',
  report: ImportReport,
): Record<string, unknown>[] {
  // LiteLLM weighs by the first of weight, rpm, tpm any deployment declares (a deployment without it weighs 0).
  const fields: ('weight' | 'rpm' | 'tpm')[] =
    weightBy === 'capacity' ? ['rpm', 'tpm'] : ['weight', 'rpm', 'tpm'];
  const by = fields.find((f) => deployments.some((d) => d[f] !== undefined));
  const orders = [
    ...new Set(deployments.map((d) => d.order).filter((o): o is number => o !== undefined)),
  ].sort((a, b) => a - b);
  const targets: Record<string, unknown>[] = [];
  const byId = new Map<string, Record<string, unknown>>();
  for (const deployment of deployments) {
    const target = { ...deployment.target };
    const weight = by === undefined ? 1 : (deployment[by] ?? 0);
    let role: 'primary' | 'secondary' | 'backup' = 'primary';
    if (orders.length > 0) {
      const rank = deployment.order === undefined ? orders.length : orders.indexOf(deployment.order);
      role = rank === 0 ? 'primary' : rank === 1 ? 'secondary' : 'backup';
    }
    if (weight === 0 && deployments.length > 1) {
      target['weight'] = BACKUP_WEIGHT;
      // Never drawn by LiteLLM's shuffle: the nearest is a target used only when the others fail.
      role = 'backup';
      report.approximated(
        `${deployment.path}`,
        `weighs 0 by ${by}: role backup in models.${name} (tried only after the others)`,
      );
    }
    if (by !== undefined && weight > 0 && deployments.length > 1) target['weight'] = weight;
    if (role !== 'primary') target['role'] = role;
    const id = `${String(target['provider'])}/${String(target['model'])}`;
    const same = byId.get(id);
    if (same !== undefined) {
      // Switchyard routes by target id: two identical deployments are one target with both weights.
      same['weight'] =
        ((same['weight'] as number | undefined) ?? 1) + ((target['weight'] as number | undefined) ?? 1);
      report.approximated(
        deployment.path,
        `same provider and model as an earlier deployment: merged into ${id}`,
      );
      continue;
    }
    byId.set(id, target);
    targets.push(target);
  }
  return targets;
}

function timeoutsOf(
  deployments: Deployment[],
  totalMs: number | undefined,
  streamMs: number | undefined,
): Record<string, number> | undefined {
  const total = maxOf(deployments.map((d) => d.timeoutMs)) ?? totalMs;
  const stream = maxOf(deployments.map((d) => d.streamTimeoutMs)) ?? streamMs;
  if (total === undefined && stream === undefined) return undefined;
  const timeouts: Record<string, number> = {};
  if (total !== undefined) {
    timeouts['total_ms'] = total;
    // Waiting for a first byte (or between chunks) longer than the whole request may last means nothing.
    if (total < 15_000) timeouts['first_byte_ms'] = total;
    if (total < 60_000) timeouts['idle_ms'] = total;
  }
  if (stream !== undefined) {
    timeouts['first_byte_ms'] = Math.min(stream, total ?? stream);
    timeouts['idle_ms'] = Math.min(stream, total ?? stream);
  }
  return timeouts;
}

/** The group's total rpm/tpm, when every deployment declares it (else the group has no cap in LiteLLM either). */
function capOf(deployments: Deployment[]): Record<string, number> | undefined {
  const cap: Record<string, number> = {};
  if (deployments.every((d) => d.rpm !== undefined)) {
    cap['requests_per_minute'] = deployments.reduce((sum, d) => sum + d.rpm!, 0);
  }
  if (deployments.every((d) => d.tpm !== undefined)) {
    cap['tokens_per_minute'] = deployments.reduce((sum, d) => sum + d.tpm!, 0);
  }
  return Object.keys(cap).length > 0 ? cap : undefined;
}

function maxOf(values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length > 0 ? Math.max(...known) : undefined;
}

/**
 * The weighted strategy draws its first entry among all of a model's entries,
 * backups included (the role re-rank then moves a drawn backup behind the
 * primaries, heaviest first): a backup of weight 1 beside primaries of 9 and
 * 1 would skew their split. A weight this small keeps it out of the draw and,
 * being equal among backups, keeps them in the order LiteLLM tries them.
 */
const BACKUP_WEIGHT = 0.000001;

function backupEntry(
  model: Record<string, unknown>,
  entry: Record<string, unknown>,
): Record<string, unknown> {
  return model['strategy'] === 'weighted'
    ? { ...entry, role: 'backup', weight: BACKUP_WEIGHT }
    : { ...entry, role: 'backup' };
}

/** `[{gpt-4: [gpt-3.5, claude]}]` (LiteLLM's shape) or `{gpt-4: [...]}` → [from, [to...]]. */
function fallbackPairs(value: unknown): [string, string[]][] | undefined {
  const entries = Array.isArray(value) ? value : isMapping(value) ? [value] : undefined;
  if (entries === undefined) return undefined;
  const pairs: [string, string[]][] = [];
  for (const entry of entries) {
    if (!isMapping(entry)) return undefined;
    for (const [from, to] of Object.entries(entry)) {
      const list = Array.isArray(to) ? to : [to];
      pairs.push([from, list.filter((t): t is string => typeof t === 'string')]);
    }
  }
  return pairs;
}

function addFallbacks(
  models: Record<string, Record<string, unknown>>,
  setting: SettingReader,
  report: ImportReport,
): void {
  const edges = new Map<string, Set<string>>();
  const reaches = (from: string, to: string, seen = new Set<string>()): boolean => {
    if (from === to) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return [...(edges.get(from) ?? [])].some((next) => reaches(next, to, seen));
  };
  const add = (from: string, to: string, path: string, kind: string): void => {
    const model = models[from];
    if (model === undefined) {
      report.notTranslated(path, `'${from}' is not a model of the imported config`);
      return;
    }
    if (models[to] === undefined) {
      report.notTranslated(path, `fallback '${to}' is not a model of the imported config`);
      return;
    }
    if (from === to) return;
    const targets = model['targets'] as Record<string, unknown>[];
    if (targets.some((t) => t['group'] === to)) return;
    if (reaches(to, from)) {
      // A group target here would close a cycle, which Switchyard refuses: inline the fallback's own deployments.
      let added = 0;
      for (const t of models[to]!['targets'] as Record<string, unknown>[]) {
        if (t['group'] !== undefined) continue;
        if (targets.some((o) => o['provider'] === t['provider'] && o['model'] === t['model'])) continue;
        const { weight: _weight, role: _role, ...rest } = t;
        targets.push(backupEntry(models[from]!, rest));
        added++;
      }
      report.approximated(
        path,
        `${kind} ${from} → ${to}: ${to} falls back to ${from} too, so its ${added} deployment(s) are inlined as backup targets of models.${from} (in order, not by ${to}'s strategy)`,
      );
      return;
    }
    targets.push(backupEntry(model, { group: to }));
    (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
    report.translated(
      path,
      `${kind} models.${from}: { group: ${to}, role: backup } (after all its own deployments fail)`,
    );
  };

  const fallbacks = setting('fallbacks');
  if (fallbacks) {
    const pairs = fallbackPairs(fallbacks.value);
    if (pairs === undefined) report.notTranslated(fallbacks.path, 'expected a list of {model: [fallbacks]}');
    else
      for (const [from, tos] of pairs)
        for (const to of tos) add(from, to, `${fallbacks.path}.${from}`, 'fallback');
  }
  const contextFallbacks = setting('context_window_fallbacks');
  if (contextFallbacks) {
    const pairs = fallbackPairs(contextFallbacks.value);
    if (pairs === undefined) {
      report.notTranslated(contextFallbacks.path, 'expected a list of {model: [fallbacks]}');
    } else {
      for (const [from, tos] of pairs) {
        for (const to of tos) add(from, to, `${contextFallbacks.path}.${from}`, 'context-window fallback');
        if (models[from] !== undefined) {
          const declared = (models[from]!['targets'] as Record<string, unknown>[]).some(
            (t) => t['context_window'] !== undefined,
          );
          report.approximated(
            `${contextFallbacks.path}.${from}`,
            declared
              ? 'taken for every failure, and for prompts beyond the context_window its targets declare (model_info.max_input_tokens)'
              : 'taken for every failure; for prompts too long, only once its targets declare context_window (set model_info.max_input_tokens)',
          );
        }
      }
    }
  }
  const defaults = setting('default_fallbacks');
  if (defaults) {
    const list = Array.isArray(defaults.value)
      ? defaults.value.filter((v): v is string => typeof v === 'string')
      : [];
    if (list.length === 0) report.notTranslated(defaults.path, 'expected a list of model names');
    for (const to of list) {
      for (const from of Object.keys(models)) {
        if (from !== to && models[to] !== undefined) add(from, to, `${defaults.path}`, 'default fallback');
      }
      if (models[to] === undefined)
        report.notTranslated(defaults.path, `'${to}' is not a model of the imported config`);
    }
  }
}

/** `model_group_alias: { alias: group }` (or `{ alias: { model: group, hidden } }`) → a model whose one target is the group. */
function addAliases(
  models: Record<string, Record<string, unknown>>,
  setting: SettingReader,
  report: ImportReport,
): void {
  const aliases = setting('model_group_alias');
  if (!aliases) return;
  if (!isMapping(aliases.value)) {
    report.notTranslated(aliases.path, 'expected a mapping of alias to model name');
    return;
  }
  for (const [alias, spec] of Object.entries(aliases.value)) {
    const to = typeof spec === 'string' ? spec : isMapping(spec) ? spec['model'] : undefined;
    const path = `${aliases.path}.${alias}`;
    if (typeof to !== 'string' || models[to] === undefined) {
      report.notTranslated(path, `'${String(to)}' is not a model of the imported config`);
    } else if (models[alias] !== undefined) {
      report.notTranslated(path, `'${alias}' is already a model`);
    } else {
      models[alias] = { targets: [{ group: to }] };
      report.translated(
        path,
        `models.${alias}: { targets: [{ group: ${to} }] }${isMapping(spec) && spec['hidden'] ? ' (Switchyard lists it in /v1/models)' : ''}`,
      );
    }
  }
}

/** `redis_url`, or `redis_host` / `redis_port` / `redis_password`, as one URL. */
function redisFrom(
  values: Record<string, unknown>,
  sectionName: string,
  used: Set<string>,
  report: ImportReport,
  prefix = 'redis_',
): string | undefined {
  const url = stringValue(values[`${prefix}url`]);
  const host = stringValue(values[`${prefix}host`]);
  const port = stringValue(values[`${prefix}port`]);
  const password = stringValue(values[`${prefix}password`]);
  for (const key of ['url', 'host', 'port', 'password']) {
    if (values[`${prefix}${key}`] !== undefined) used.add(`${prefix}${key}`);
  }
  if (url !== undefined) {
    report.translated(`${sectionName}.${prefix}url`, 'storage.redis_url');
    return url;
  }
  if (host === undefined) return undefined;
  // A literal password may hold characters a URL reserves; one from the environment is used as it is.
  const auth =
    password === undefined ? '' : `:${envName(password) ? password : encodeURIComponent(password)}@`;
  const scheme = booleanValue(values['ssl']) === true ? 'rediss' : 'redis';
  const built = `${scheme}://${auth}${host}:${port ?? '6379'}`;
  for (const key of ['host', 'port', 'password']) {
    if (values[`${prefix}${key}`] === undefined) continue;
    if (key === 'password' && envName(password)) {
      report.approximated(
        `${sectionName}.${prefix}${key}`,
        'storage.redis_url (inside the URL: a password with URL-reserved characters must be percent-encoded)',
      );
    } else report.translated(`${sectionName}.${prefix}${key}`, 'storage.redis_url');
  }
  return built;
}

interface CacheResult {
  cache: Record<string, unknown> | undefined;
  redisUrl: string | undefined;
  needsRedis: boolean;
}

function readCache(
  models: Record<string, Record<string, unknown>>,
  settings: Record<string, unknown>,
  used: Set<string>,
  setting: SettingReader,
  report: ImportReport,
): CacheResult {
  const result: CacheResult = { cache: undefined, redisUrl: undefined, needsRedis: false };
  const routerCache = setting('cache_responses');
  const on = booleanValue(settings['cache']) === true || booleanValue(routerCache?.value) === true;
  if (settings['cache'] !== undefined) used.add('cache');
  const params = isMapping(settings['cache_params']) ? settings['cache_params'] : {};
  if (settings['cache_params'] !== undefined) used.add('cache_params');
  const modelCache: Record<string, unknown> = { enabled: true, scope: 'global' };
  const at = (key: string) => `litellm_settings.cache_params.${key}`;
  const type = typeof params['type'] === 'string' ? params['type'] : params['host'] ? 'redis' : 'local';
  let off = !on;
  for (const [key, value] of Object.entries(params)) {
    switch (key) {
      case 'type':
        if (type === 'redis') {
          result.needsRedis = true;
          report.translated(
            at(key),
            'redis: answers are kept in Redis (storage.redis_url) behind the in-process cache',
          );
        } else if (type === 'local')
          report.translated(at(key), 'local: the in-process cache (cache.memory_mb)');
        else if (type === 'disk') {
          result.cache = { sql: { enabled: true } };
          report.approximated(at(key), 'disk: cache.sql (answers kept in the SQL database across restarts)');
        } else if (type === 'redis-semantic' || type === 'qdrant-semantic') {
          result.needsRedis = type === 'redis-semantic';
          modelCache['semantic'] = { enabled: true };
          report.approximated(
            at(key),
            `${type}: Switchyard's semantic cache (models.<name>.cache.semantic), embedding with its built-in lexical embedder unless an embedding model is named`,
          );
        } else
          report.notTranslated(at(key), `${String(type)}: Switchyard caches in memory, Redis and SQL only`);
        break;
      case 'ttl': {
        const ttl = numberValue(value);
        if (ttl === undefined || ttl < 1) report.notTranslated(at(key), 'expected seconds ≥ 1');
        else {
          modelCache['ttl_s'] = Math.round(ttl);
          report.translated(at(key), `models.<name>.cache.ttl_s: ${Math.round(ttl)}`);
        }
        break;
      }
      case 'similarity_threshold': {
        const threshold = numberValue(value);
        if (threshold === undefined || threshold <= 0 || threshold > 1)
          report.notTranslated(at(key), 'expected 0 < x ≤ 1');
        else {
          modelCache['semantic'] = { ...(modelCache['semantic'] as object), threshold };
          report.translated(at(key), 'models.<name>.cache.semantic.threshold');
        }
        break;
      }
      case 'redis_semantic_cache_embedding_model':
      case 'qdrant_semantic_cache_embedding_model':
        if (typeof value === 'string' && models[value] !== undefined) {
          modelCache['semantic'] = { ...(modelCache['semantic'] as object), embedder: value };
          report.translated(at(key), `models.<name>.cache.semantic.embedder: ${value}`);
        } else
          report.approximated(at(key), 'not a model of the imported config: the built-in lexical embedder');
        break;
      case 'host':
      case 'port':
      case 'password':
        break; // below, as one URL
      case 'mode':
        if (value === 'default_off') {
          off = true;
          report.notTranslated(
            at(key),
            'default_off (caching only when a request asks): Switchyard caches per model, so caching stays off',
          );
        } else report.translated(at(key), 'default_on: caching on for every model');
        break;
      case 'supported_call_types':
        report.approximated(
          at(key),
          'Switchyard caches chat completions (and embeddings), whatever the list says',
        );
        break;
      case 'namespace':
        report.notTranslated(at(key), 'cache keys share storage.redis_prefix with the rest of the gateway');
        break;
      default:
        report.notTranslated(at(key), 'no Switchyard equivalent');
    }
  }
  result.redisUrl = redisFrom(params, 'litellm_settings.cache_params', new Set(), report, '');
  if (settings['cache'] !== undefined) {
    if (on && !off) {
      report.approximated(
        'litellm_settings.cache',
        `models.<name>.cache on every model (${Object.keys(models).length}), scope global: like LiteLLM, an answer is shared by every key asking the same; set scope: key to keep answers private to each key`,
      );
    } else report.translated('litellm_settings.cache', 'caching off');
  }
  if (routerCache)
    report.translated(routerCache.path, on ? 'models.<name>.cache on every model' : 'caching off');
  if (on && !off) {
    for (const [name, model] of Object.entries(models)) {
      const cache = structuredClone(modelCache);
      // The embedding model's own answers are cached exactly: a model cannot embed its own prompts.
      if ((cache['semantic'] as { embedder?: string } | undefined)?.embedder === name)
        delete cache['semantic'];
      model['cache'] = cache;
    }
  }
  return result;
}

function readGeneral(
  general: Record<string, unknown>,
  used: Set<string>,
  out: Record<string, unknown>,
  storage: Record<string, unknown>,
  report: ImportReport,
): void {
  if (general['master_key'] !== undefined) {
    used.add('master_key');
    const key = stringValue(general['master_key']);
    if (key !== undefined && envName(key)) {
      out['master_key'] = key;
      report.translated('general_settings.master_key', `master_key: ${key}`);
    } else if (key === undefined || key.length < 16 || /^sk-1234/.test(key)) {
      report.notTranslated(
        'general_settings.master_key',
        'too short or a documented sample key: Switchyard wants 16+ random characters; set SWITCHYARD_MASTER_KEY or let the first start generate one',
      );
    } else {
      out['master_key'] = key;
      report.translated(
        'general_settings.master_key',
        `master_key (written literally as it was; consider ${envVar('SWITCHYARD_MASTER_KEY')})`,
      );
    }
  }
  if (general['database_url'] !== undefined) {
    used.add('database_url');
    const url = stringValue(general['database_url']);
    if (url === undefined) report.notTranslated('general_settings.database_url', 'expected a URL');
    else {
      storage['database_url'] = url;
      report.approximated(
        'general_settings.database_url',
        'storage.database_url: Switchyard keeps its own tables there; LiteLLM’s keys and spend are not imported (use a database of its own to keep them apart)',
      );
    }
  }
}

function readLogging(
  settings: Record<string, unknown>,
  used: Set<string>,
  out: Record<string, unknown>,
  report: ImportReport,
): void {
  if (settings['set_verbose'] !== undefined) {
    used.add('set_verbose');
    if (booleanValue(settings['set_verbose']) === true) {
      out['logging'] = { level: 'debug' };
      report.approximated('litellm_settings.set_verbose', 'logging.level: debug');
    } else report.translated('litellm_settings.set_verbose', 'logging.level stays info');
  }
  if (settings['json_logs'] !== undefined) {
    used.add('json_logs');
    report.translated('litellm_settings.json_logs', 'Switchyard always logs JSON lines');
  }
}
