/**
 * Finding, reading, interpolating and validating the configuration.
 *
 * Problems are collected, not thrown one at a time: a user fixing a config
 * wants every mistake in one go, each on one line that names its path
 * (`providers.local.base_url: expected a URL`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { salvageConfig } from './salvage.ts';
import { type Config, configSchema } from './schema.ts';
import { validateRouting } from './validate-routing.ts';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when running on built-in defaults. */
  source: string | null;
  /** Human-readable notes for the start banner (e.g. which providers came from the environment). */
  notes: string[];
}

export interface LoadOptions {
  /** `--config PATH`; takes precedence over `SWITCHYARD_CONFIG` and `./switchyard.yaml`. */
  path?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Which file to read, in the documented order; null when there is none. */
export function findConfigFile(options: LoadOptions): string | null {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.path ?? env['SWITCHYARD_CONFIG'];
  if (explicit) {
    const path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new ConfigError([`config file not found: ${path}`]);
    return path;
  }
  for (const name of ['switchyard.yaml', 'switchyard.yml']) {
    const path = resolve(cwd, name);
    if (existsSync(path)) return path;
  }
  return null;
}

export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const file = findConfigFile(options);
  const notes: string[] = [];
  let raw: unknown;
  if (file === null) {
    raw = defaultConfig(env, notes);
  } else {
    raw = parseYaml(readFileSync(file, 'utf8'), file);
    const problems: string[] = [];
    raw = interpolate(raw, env, [], problems);
    if (problems.length > 0) throw new ConfigError(problems);
  }
  applyEnvironmentOverrides(raw, env);
  return { config: validateConfig(raw), source: file, notes };
}

/** Validates an already-parsed object: schema first, then cross-references. */
export function validateConfig(raw: unknown): Config {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    // Cross-checks still run on what parsed: every mistake is reported at once.
    const salvaged = salvageConfig(raw);
    const cross = salvaged ? crossCheck(salvaged.config, salvaged.failed) : [];
    throw new ConfigError([...new Set([...formatIssues(parsed.error.issues), ...cross])]);
  }
  const problems = crossCheck(parsed.data, new Set());
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data;
}

/**
 * The checks a schema cannot express. `failed` names sections that did not
 * parse (salvage.ts): a check reading one stands down, since its problem is
 * already reported and a second line about its consequence would mislead.
 */
function crossCheck(config: Config, failed: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  if (!failed.has('providers') && !failed.has('models')) problems.push(...validateRouting(config));
  problems.push(...validateSemanticCache(config));
  for (const name of Object.keys(config.limits.models)) {
    // A limit on a model no client can ask for would silently limit nothing.
    if (!failed.has('models') && !Object.hasOwn(config.models, name))
      problems.push(`limits.models.${name}: not a model of this gateway`);
  }
  config.warmup.requests.models.forEach((name, i) => {
    if (!failed.has('models') && !Object.hasOwn(config.models, name))
      problems.push(`warmup.requests.models.${i}: '${name}' is not a model of this gateway`);
  });
  const redisTargets = (['redis_url', 'redis_sentinel', 'redis_cluster'] as const).filter(
    (name) => config.storage[name] !== undefined,
  );
  if (redisTargets.length > 1 && !failed.has('storage')) {
    problems.push(
      `storage: ${redisTargets.join(' and ')} are alternatives; set one (REDIS_URL in the environment sets redis_url)`,
    );
  }
  if (
    config.jobs.backend === 'redis' &&
    redisTargets.length === 0 &&
    !failed.has('storage') &&
    !failed.has('jobs')
  ) {
    problems.push(
      'jobs.backend: redis needs storage.redis_url (or REDIS_URL), redis_sentinel or redis_cluster; the default sql backend needs nothing',
    );
  }
  if (config.master_key !== undefined && SAMPLE_KEYS.has(config.master_key)) {
    problems.push('master_key: a documented sample key cannot be used; set a random secret');
  }
  return problems;
}

/** A semantic cache stores through the exact one, and embeds with the built-in embedder or a served model. */
function validateSemanticCache(config: Config): string[] {
  const problems: string[] = [];
  for (const [name, model] of Object.entries(config.models)) {
    const semantic = model.cache.semantic;
    if (!semantic.enabled) continue;
    const path = `models.${name}.cache.semantic`;
    if (!model.cache.enabled) problems.push(`${path}.enabled: needs models.${name}.cache.enabled: true`);
    if (semantic.embedder !== 'lexical' && !Object.hasOwn(config.models, semantic.embedder)) {
      problems.push(
        `${path}.embedder: '${semantic.embedder}' is neither 'lexical' nor a model of this gateway`,
      );
    } else if (semantic.embedder === name) {
      problems.push(`${path}.embedder: a model cannot embed its own prompts`);
    }
  }
  return problems;
}

/** Keys that appear in documentation and tutorials; a gateway guarded by one is open. */
const SAMPLE_KEYS = new Set([
  'sk-1234',
  'sk-1234567890abcdef',
  'changeme-changeme',
  'sk-switchyard-master-key',
]);

function parseYaml(text: string, file: string): unknown {
  // parseDocument collects every syntax error; `prettyErrors` gives line:col.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${file}: ${e.message.split('\n')[0]?.replace(/:$/, '')}`));
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError([`${file}: expected a mapping at the top level`]);
  }
  return value;
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_VAR = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

/**
 * Replaces `${VAR}` (and `${VAR:-default}`) in string values, after YAML parsing,
 * so an environment value can never inject YAML structure. A value that is
 * exactly one unset variable becomes absent (optional settings stay optional);
 * an unset variable inside a longer string is an error.
 */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string[], problems: string[]): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_VAR.exec(value);
    if (whole) {
      const found = env[whole[1]!];
      if (found !== undefined && found !== '') return coerceScalar(found);
      return whole[2] !== undefined ? coerceScalar(whole[2]) : undefined;
    }
    return value.replace(VAR, (_match, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      problems.push(`${path.join('.') || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, String(i)], problems));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const replaced = interpolate(v, env, [...path, key], problems);
      if (replaced !== undefined) out[key] = replaced;
    }
    return out;
  }
  return value;
}

/** `port: ${PORT}` should give a number, as it would written literally. */
function coerceScalar(text: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (text === 'true') return true;
  if (text === 'false') return false;
  return text;
}

/** The documented environment variables win over the file for deployment-level settings. */
function applyEnvironmentOverrides(raw: unknown, env: NodeJS.ProcessEnv): void {
  if (raw === null || typeof raw !== 'object') return;
  const root = raw as Record<string, unknown>;
  const section = (name: string): Record<string, unknown> => {
    const existing = root[name];
    if (existing !== null && typeof existing === 'object' && !Array.isArray(existing)) {
      return existing as Record<string, unknown>;
    }
    const created: Record<string, unknown> = {};
    root[name] = created;
    return created;
  };
  if (env['PORT']) section('server')['port'] = coerceScalar(env['PORT']);
  if (env['HOST']) section('server')['host'] = env['HOST'];
  if (env['SWITCHYARD_MASTER_KEY'] && root['master_key'] === undefined) {
    root['master_key'] = env['SWITCHYARD_MASTER_KEY'];
  }
  if (env['SWITCHYARD_DATA_DIR']) root['data_dir'] = env['SWITCHYARD_DATA_DIR'];
  if (env['DATABASE_URL']) section('storage')['database_url'] = env['DATABASE_URL'];
  if (env['REDIS_URL']) section('storage')['redis_url'] = env['REDIS_URL'];
  if (env['SWITCHYARD_MIGRATE']) section('storage')['migrate'] = coerceScalar(env['SWITCHYARD_MIGRATE']);
  if (env['DATABASE_REPLICA_URLS']) {
    section('storage')['replica_urls'] = env['DATABASE_REPLICA_URLS']
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
  if (env['LOG_LEVEL']) section('logging')['level'] = env['LOG_LEVEL'];
}

/**
 * No config file: the built-in mock provider, plus every provider whose key is
 * in the environment, so `npm start` serves something useful with nothing set up.
 */
function defaultConfig(env: NodeJS.ProcessEnv, notes: string[]): Record<string, unknown> {
  const providers: Record<string, unknown> = { mock: { type: 'mock' } };
  const models: Record<string, unknown> = {
    mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
  };
  notes.push('no config file: serving the built-in mock provider as model "mock"');
  if (env['OPENAI_API_KEY']) {
    providers['openai'] = { type: 'openai', api_key: env['OPENAI_API_KEY'] };
    for (const model of ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'text-embedding-3-small']) {
      models[model] = { targets: [{ provider: 'openai', model }] };
    }
    notes.push('OPENAI_API_KEY found: serving OpenAI models');
  }
  if (env['ANTHROPIC_API_KEY']) {
    providers['anthropic'] = { type: 'anthropic', api_key: env['ANTHROPIC_API_KEY'] };
    for (const model of ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1']) {
      models[model] = { targets: [{ provider: 'anthropic', model }] };
    }
    notes.push('ANTHROPIC_API_KEY found: serving Anthropic models');
  }
  if (env['GEMINI_API_KEY']) {
    providers['gemini'] = { type: 'gemini', api_key: env['GEMINI_API_KEY'] };
    for (const model of ['gemini-2.5-flash', 'gemini-2.5-pro', 'gemini-2.0-flash', 'gemini-embedding-001']) {
      models[model] = { targets: [{ provider: 'gemini', model }] };
    }
    notes.push('GEMINI_API_KEY found: serving Gemini models');
  }
  return { providers, models };
}

type Issue = z.core.$ZodIssue;

function formatIssues(issues: readonly Issue[]): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${path === '(root)' ? key : `${path}.${key}`}: unknown key`);
      continue;
    }
    lines.push(`${path}: ${describeIssue(issue)}`);
  }
  return [...new Set(lines)];
}

function describeIssue(issue: Issue): string {
  if (issue.code === 'invalid_type') {
    // Zod says "Invalid input: expected record, received undefined"; say it plainly.
    if (/received undefined$/.test(issue.message)) return 'required';
    const expected = /expected (\w+)/.exec(issue.message)?.[1];
    if (expected) return `expected ${expected === 'record' ? 'a mapping' : expected}`;
  }
  return issue.message;
}
