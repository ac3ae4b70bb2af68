/**
 * `model_list`: each LiteLLM deployment as a Switchyard target (its provider
 * deduplicated across deployments), grouped by `model_name`, with what the
 * group's model settings need from its deployments (weights, limits,
 * per-deployment timeouts and retries, priority order).
 */

import { translateProvider } from './providers.ts';
import type { ImportReport } from './report.ts';
import { booleanValue, envVar, isMapping, numberValue, secondsToMs, stringValue } from './values.ts';

export interface Deployment {
  /** `model_list[3]`, for the report. */
  path: string;
  target: Record<string, unknown>;
  weight: number | undefined;
  rpm: number | undefined;
  tpm: number | undefined;
  order: number | undefined;
  timeoutMs: number | undefined;
  streamTimeoutMs: number | undefined;
  maxRetries: number | undefined;
}

export interface DeploymentGroups {
  /** model_name → its deployments, in file order. */
  groups: Map<string, Deployment[]>;
  providers: Record<string, Record<string, unknown>>;
}

/** litellm_params keys that set request defaults, which Switchyard leaves to the client. */
const REQUEST_DEFAULTS = new Set([
  'temperature',
  'max_tokens',
  'max_completion_tokens',
  'top_p',
  'n',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'response_format',
  'reasoning_effort',
  'drop_params',
  'additional_drop_params',
  'user',
]);

export function readDeployments(modelList: unknown[], report: ImportReport): DeploymentGroups {
  const groups = new Map<string, Deployment[]>();
  const providers: Record<string, Record<string, unknown>> = {};
  const signatures = new Map<string, string>();
  modelList.forEach((entry, index) => {
    const path = `model_list[${index}]`;
    if (!isMapping(entry)) {
      report.notTranslated(path, 'expected a mapping with model_name and litellm_params');
      return;
    }
    const name = typeof entry['model_name'] === 'string' ? entry['model_name'].trim() : '';
    const params = isMapping(entry['litellm_params']) ? entry['litellm_params'] : {};
    if (name === '') {
      report.notTranslated(path, 'no model_name');
      return;
    }
    if (name.includes('*')) {
      report.notTranslated(
        path,
        `wildcard model_name '${name}': Switchyard serves the model names its config lists; add each model you need`,
      );
      return;
    }
    const provider = translateProvider(params);
    if (!provider.ok) {
      report.notTranslated(`${path} (${name})`, provider.reason);
      return;
    }
    // Headers are part of what makes a provider distinct: read them before naming it.
    const headers = readHeaders(params);
    if (headers !== undefined) provider.fields['headers'] = headers;
    const providerName = providerNameFor(
      provider.type,
      provider.family,
      provider.fields,
      providers,
      signatures,
    );
    const target: Record<string, unknown> = { provider: providerName, model: provider.model };
    const group = groups.get(name) ?? [];
    const targetPath = `models.${name}.targets.${group.length}`;
    const describe = `${name} → ${targetPath} (${providerName}/${provider.model})`;
    if (provider.approximation)
      report.approximated(`${path}.litellm_params.model`, `${describe}: ${provider.approximation}`);
    else report.translated(`${path}.litellm_params.model`, describe);
    for (const key of ['api_base', 'api_key', 'api_version', 'organization'] as const) {
      if (params[key] === undefined) continue;
      report.translated(
        `${path}.litellm_params.${key}`,
        `providers.${providerName}.${key === 'api_base' ? (provider.type === 'azure' ? 'endpoint' : 'base_url') : key}${
          typeof params[key] === 'string' && /^os\.environ\//.test(params[key])
            ? ` (os.environ/NAME → ${envVar('NAME')})`
            : ''
        }`,
      );
    }
    const deployment: Deployment = {
      path,
      target,
      weight: undefined,
      rpm: undefined,
      tpm: undefined,
      order: undefined,
      timeoutMs: undefined,
      streamTimeoutMs: undefined,
      maxRetries: undefined,
    };
    readParams(params, deployment, `${path}.litellm_params`, providerName, report);
    // Old-style configs put rpm/tpm beside litellm_params.
    for (const key of ['rpm', 'tpm'] as const) {
      if (entry[key] === undefined || deployment[key] !== undefined) continue;
      deployment[key] = positiveInteger(entry[key]);
      report.translated(`${path}.${key}`, `${targetPath}.limits.${key}`);
    }
    readBaseModel(
      entry['model_info'],
      provider.type,
      target,
      providers[providerName]!,
      `${path}.model_info`,
      report,
    );
    readModelInfo(entry['model_info'], target, `${path}.model_info`, report);
    for (const key of Object.keys(entry)) {
      if (!['model_name', 'litellm_params', 'model_info', 'rpm', 'tpm'].includes(key)) {
        report.notTranslated(`${path}.${key}`, 'no Switchyard equivalent');
      }
    }
    const limits: Record<string, number> = {};
    if (deployment.rpm !== undefined) limits['rpm'] = deployment.rpm;
    if (deployment.tpm !== undefined) limits['tpm'] = deployment.tpm;
    if (Object.keys(limits).length > 0) target['limits'] = limits;
    group.push(deployment);
    groups.set(name, group);
  });
  return { groups, providers };
}

function readParams(
  params: Record<string, unknown>,
  deployment: Deployment,
  path: string,
  providerName: string,
  report: ImportReport,
): void {
  for (const [key, value] of Object.entries(params)) {
    const at = `${path}.${key}`;
    switch (key) {
      case 'model':
      case 'api_base':
      case 'api_key':
      case 'api_version':
      case 'organization':
        break; // reported with the provider
      case 'rpm':
      case 'tpm': {
        const n = positiveInteger(value);
        if (n === undefined) report.notTranslated(at, 'expected a positive whole number');
        else {
          deployment[key] = n;
          report.translated(
            at,
            `limits.${key} of the target (Switchyard moves traffic off it near the limit)`,
          );
        }
        break;
      }
      case 'weight': {
        const n = numberValue(value);
        if (n === undefined || n < 0) report.notTranslated(at, 'expected a number ≥ 0');
        else {
          deployment.weight = n;
          report.translated(at, 'target weight');
        }
        break;
      }
      case 'order': {
        const n = numberValue(value);
        if (n === undefined) report.notTranslated(at, 'expected a number');
        else {
          deployment.order = n;
          report.approximated(
            at,
            'target role: the lowest order is primary, the next secondary, later ones backup',
          );
        }
        break;
      }
      case 'timeout':
        deployment.timeoutMs = secondsToMs(value);
        report.approximated(at, "the model's timeouts.total_ms (Switchyard times models, not deployments)");
        break;
      case 'stream_timeout':
        deployment.streamTimeoutMs = secondsToMs(value);
        report.approximated(
          at,
          "the model's timeouts.first_byte_ms and idle_ms (the longest of its deployments')",
        );
        break;
      case 'max_retries': {
        const n = numberValue(value);
        if (n !== undefined && n >= 0) deployment.maxRetries = Math.round(n);
        report.approximated(at, "the model's retries.max when no num_retries is set (retries per target)");
        break;
      }
      case 'extra_headers':
      case 'headers':
        if (isMapping(value)) report.translated(at, `providers.${providerName}.headers`);
        else report.notTranslated(at, 'expected a mapping of header names to values');
        break;
      case 'input_cost_per_token':
      case 'output_cost_per_token':
        readTokenPrice(key, value, deployment.target, at, report);
        break;
      default:
        if (REQUEST_DEFAULTS.has(key)) {
          report.notTranslated(at, 'a request default: Switchyard sends what the client sends');
        } else {
          report.notTranslated(at, 'no Switchyard equivalent');
        }
    }
  }
}

/**
 * Azure names deployments freely; `model_info.base_model` says which model a
 * deployment runs. Switchyard's Azure provider maps model ids to deployment
 * names, so the target can carry the real model id (and be priced as it).
 */
function readBaseModel(
  info: unknown,
  type: string,
  target: Record<string, unknown>,
  provider: Record<string, unknown>,
  path: string,
  report: ImportReport,
): void {
  if (!isMapping(info) || typeof info['base_model'] !== 'string') return;
  const at = `${path}.base_model`;
  const baseModel = info['base_model'].replace(/^azure\//, '');
  const deploymentName = target['model'] as string;
  if (type !== 'azure') {
    report.notTranslated(at, 'Switchyard prices and names a target by its upstream model id');
    return;
  }
  if (baseModel === deploymentName) {
    report.translated(at, 'the deployment is named after its model');
    return;
  }
  const deployments = (provider['deployments'] ?? {}) as Record<string, string>;
  const mapped = deployments[baseModel];
  if (mapped !== undefined && mapped !== deploymentName) {
    report.approximated(
      at,
      `another deployment of this endpoint already runs ${baseModel}: the target keeps the deployment name as its model id (priced only if pricing lists it)`,
    );
    return;
  }
  provider['deployments'] = { ...deployments, [baseModel]: deploymentName };
  target['model'] = baseModel;
  report.translated(
    at,
    `target model ${baseModel} (priced as it), sent to deployment ${deploymentName} (the provider's deployments)`,
  );
}

function readHeaders(params: Record<string, unknown>): Record<string, string> | undefined {
  let headers: Record<string, string> | undefined;
  for (const key of ['headers', 'extra_headers']) {
    const value = params[key];
    if (!isMapping(value)) continue;
    for (const [name, v] of Object.entries(value)) {
      const text = stringValue(v);
      if (text === undefined) continue;
      headers ??= {};
      headers[name] = text;
    }
  }
  return headers;
}

function readModelInfo(
  info: unknown,
  target: Record<string, unknown>,
  path: string,
  report: ImportReport,
): void {
  if (info === undefined) return;
  if (!isMapping(info)) {
    report.notTranslated(path, 'expected a mapping');
    return;
  }
  for (const [key, value] of Object.entries(info)) {
    const at = `${path}.${key}`;
    switch (key) {
      case 'max_input_tokens': {
        const n = positiveInteger(value);
        if (n === undefined) report.notTranslated(at, 'expected a positive whole number');
        else {
          target['context_window'] = n;
          report.translated(at, 'target context_window (longer prompts skip this target)');
        }
        break;
      }
      case 'supports_vision':
      case 'supports_function_calling': {
        const flag = booleanValue(value);
        if (flag === undefined) report.notTranslated(at, 'expected true or false');
        else {
          target[key === 'supports_vision' ? 'vision' : 'tools'] = flag;
          report.translated(at, `target ${key === 'supports_vision' ? 'vision' : 'tools'}`);
        }
        break;
      }
      case 'input_cost_per_token':
      case 'output_cost_per_token':
        readTokenPrice(key, value, target, at, report);
        break;
      case 'base_model':
        break; // readBaseModel
      case 'id':
        report.notTranslated(at, 'Switchyard names a target <provider>/<model>');
        break;
      case 'mode':
        report.notTranslated(at, 'not needed: a model serves chat and embeddings alike');
        break;
      default:
        report.notTranslated(at, 'no Switchyard equivalent');
    }
  }
}

/**
 * One provider per distinct (type, endpoint, key...): deployments that share
 * them share the provider (and its connection pool). Names are readable:
 * `openai`, then `openai-<host>`, then numbered.
 */
function providerNameFor(
  type: string,
  family: string,
  fields: Record<string, unknown>,
  providers: Record<string, Record<string, unknown>>,
  signatures: Map<string, string>,
): string {
  const signature = JSON.stringify({ type, ...fields });
  const known = signatures.get(signature);
  if (known !== undefined) return known;
  const base = sanitize(family === type ? type : family) || 'provider';
  const url = (fields['base_url'] ?? fields['endpoint']) as string | undefined;
  const label = url ? hostLabel(url, base) : '';
  const candidates = [base, label ? `${base}-${label}` : undefined].filter((c): c is string => !!c);
  let name = candidates.find((c) => !Object.hasOwn(providers, c));
  for (let n = 2; name === undefined; n++)
    if (!Object.hasOwn(providers, `${base}-${n}`)) name = `${base}-${n}`;
  providers[name] = { type, ...fields };
  signatures.set(signature, name);
  return name;
}

/** `https://eu-resource.openai.azure.com` → `eu-resource`; `${AZURE_WESTEU_API_BASE}` → `westeu`. */
function hostLabel(url: string, base: string): string {
  const env = /\$\{([A-Za-z_][A-Za-z0-9_]*)/.exec(url)?.[1];
  if (env) {
    const words = env
      .toLowerCase()
      .split('_')
      .filter((w) => w !== '' && w !== base && !['api', 'base', 'url', 'endpoint', 'host'].includes(w));
    return sanitize(words.join('-'));
  }
  try {
    const { hostname, port } = new URL(url);
    return sanitize(`${hostname.split('.')[0] ?? hostname}${port ? `-${port}` : ''}`);
  } catch {
    return 'custom';
  }
}

function sanitize(text: string): string {
  return text.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
}

function positiveInteger(value: unknown): number | undefined {
  const n = numberValue(value);
  return n !== undefined && n >= 1 ? Math.floor(n) : undefined;
}

/**
 * `input_cost_per_token` / `output_cost_per_token` (USD a token, in
 * litellm_params or model_info) → the target's price per million tokens.
 */
function readTokenPrice(
  key: 'input_cost_per_token' | 'output_cost_per_token',
  value: unknown,
  target: Record<string, unknown>,
  at: string,
  report: ImportReport,
): void {
  const n = numberValue(value);
  if (n === undefined || n < 0) {
    report.notTranslated(at, 'expected a price per token');
    return;
  }
  const side = key === 'input_cost_per_token' ? 'input' : 'output';
  target[`${side}_per_mtok`] = roundPrice(n);
  report.translated(at, `target ${side}_per_mtok (× 1,000,000)`);
}

/** USD per token → per million, without float noise (0.0000025 × 1e6 = 2.4999999999999996). */
function roundPrice(perToken: number): number {
  return Number((perToken * 1_000_000).toPrecision(12));
}
