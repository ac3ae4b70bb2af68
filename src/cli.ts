/**
 * `switchyard start | worker | check-config | keys create|list|revoke | import litellm | help`.
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 invalid config or usage.
 * Human output goes to stderr; stdout carries JSON logs (start) or command
 * results (keys), so both can be piped.
 */
import cluster from 'node:cluster';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { KeyStore } from './auth/key-store.ts';
import { KeySync } from './auth/key-sync.ts';
import { type MasterKey, resolveMasterKey } from './auth/master-key.ts';
import { importLiteLLMConfig, LiteLLMImportError } from './config/litellm-import/import-litellm.ts';
import { formatReport } from './config/litellm-import/report.ts';
import { ConfigError, type LoadedConfig, loadConfig } from './config/load.ts';
import { QUEUE_NAMES, type QueueName } from './jobs/job-queue.ts';
import { createLogger, flushLogger } from './observability/logger.ts';
import { Gateway } from './server/gateway.ts';
import {
  answerFleetCollections,
  fleetMetricsRenderer,
  serveFleetMetrics,
} from './server/http-workers/fleet-metrics.ts';
import {
  announceListening,
  HttpWorkerSupervisor,
  httpWorkerIndex,
} from './server/http-workers/http-worker-supervisor.ts';
import { hasSharedStateStore, sharedStateRequiredMessage } from './server/http-workers/shared-state.ts';
import { parseWorkerCount, WorkerCountError } from './server/http-workers/worker-count.ts';
import { backupDatabase, restoreDatabase } from './store/backup.ts';
import { MIGRATION_NAMES, migrate } from './store/migrations.ts';
import { connectRedis, describeRedisTarget } from './store/redis.ts';
import { redisKeysOf, redisTargetOf } from './store/redis-topology.ts';
import { openDatabase, parseDatabaseUrl } from './store/sql.ts';
import { nearestWord } from './util/nearest-word.ts';

const USAGE = `Usage:
  switchyard start [--workers N|auto] [--config PATH]
  switchyard worker [--queues fast,heavy,embeddings] [--config PATH]
  switchyard check-config [--config PATH]
  switchyard migrate [--config PATH]
  switchyard keys create --name NAME [--tier TIER] [--models a,b] [--expires-in DAYS] [--config PATH]
  switchyard keys list [--config PATH]
  switchyard keys revoke KEY_ID [--config PATH]
  switchyard import litellm PATH [--out FILE] [--force]
  switchyard backup --out FILE [--force] [--config PATH]
  switchyard restore FILE [--force] [--config PATH]
  switchyard help | --help | --version`;

const COMMANDS = [
  'start',
  'worker',
  'check-config',
  'migrate',
  'keys',
  'import',
  'backup',
  'restore',
  'help',
  'version',
];
const KEY_ACTIONS = ['create', 'list', 'revoke'];
const IMPORT_SOURCES = ['litellm'];

class UsageError extends Error {}

/** `unknown command: strat` plus `did you mean 'start'?` when one is near. */
function unknownWord(what: string, word: string, candidates: readonly string[]): UsageError {
  const near = nearestWord(word, candidates);
  return new UsageError(`unknown ${what}: ${word}${near ? `\ndid you mean '${near}'?` : ''}`);
}

/** The version in package.json (one directory above both src/cli.ts and dist/cli.js). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? 'unknown';
}

function loadOrExit(path: string | undefined): LoadedConfig {
  try {
    return loadConfig({ path });
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) process.stderr.write(`config error: ${problem}\n`);
      process.exit(2);
    }
    throw error;
  }
}

async function start(configPath: string | undefined, workersArg: string | undefined): Promise<void> {
  let workers: number;
  try {
    workers = parseWorkerCount(workersArg);
  } catch (error) {
    if (error instanceof WorkerCountError) throw new UsageError(error.message);
    throw error;
  }
  const loaded = loadOrExit(configPath);
  // A forked HTTP worker runs this same command line: it serves, the primary talks.
  if (cluster.isWorker) return startHttpWorker(loaded);
  if (workers > 1) return startHttpWorkers(loaded, workers, workersArg ?? String(workers));
  const gateway = await Gateway.create({ config: loaded.config });
  // Handlers go in before anyone can know we listen: a SIGTERM that follows the
  // banner must find them installed.
  stopOnSignals(gateway);
  const address = await gateway.listen();
  printBanner(loaded, address, gateway.context.database.description, gateway.masterKey);
}

/** One of `--workers N`'s processes: a whole gateway on the shared port; the primary prints the banner. */
async function startHttpWorker(loaded: LoadedConfig): Promise<void> {
  // The primary may collect the fleet's metrics while this worker still starts.
  answerFleetCollections();
  const index = httpWorkerIndex() ?? 0;
  // Every line says which worker wrote it: they share one stdout.
  const logger = createLogger({ level: loaded.config.logging.level }).child({
    worker: index + 1,
    pid: process.pid,
  });
  // Warm-up requests are once per fleet start: the first slot's worker sends them.
  const gateway = await Gateway.create({ config: loaded.config, logger, warmupRequests: index === 0 });
  // A scrape lands on any worker: each answers with the whole fleet's metrics.
  const { metrics } = gateway.context;
  metrics.renderThrough(fleetMetricsRenderer(metrics.registry));
  stopOnSignals(gateway);
  const address = await gateway.listen();
  announceListening(address, gateway.context.database.description);
}

/**
 * The primary of `--workers N` (src/server/http-workers/): refuses without
 * Redis, resolves the master key once (a first start generates and shows it
 * here; the workers then read it from the data dir), forks the workers and
 * drains them all on SIGTERM or SIGINT.
 */
async function startHttpWorkers(loaded: LoadedConfig, workers: number, requested: string): Promise<void> {
  const { config } = loaded;
  if (!hasSharedStateStore(config)) {
    process.stderr.write(`switchyard: ${sharedStateRequiredMessage(workers, requested)}\n`);
    process.exit(2);
  }
  const masterKey = resolveMasterKey(config.master_key, config.data_dir);
  const logger = createLogger({ level: config.logging.level });
  const supervisor = new HttpWorkerSupervisor({
    workers,
    // Each worker drains for up to grace_ms, then flushes the ledger and closes its connections.
    stopTimeoutMs: config.server.shutdown.grace_ms + 30_000,
    logger,
    notice: (line) => process.stderr.write(`switchyard: ${line}\n`),
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: supervisor.pids }, 'signal received: draining every HTTP worker');
    void supervisor.stop().then(async (clean) => {
      logger.info({ clean }, 'stopped');
      await flushLogger(logger);
      process.exit(clean ? 0 : 1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  serveFleetMetrics();
  const first = await supervisor.start();
  printBanner(loaded, first.address, first.database, masterKey, [
    `  workers:   ${workers} HTTP worker processes on one port (node:cluster, round robin; pids ${supervisor.pids.join(', ')})`,
  ]);
}

function printBanner(
  loaded: LoadedConfig,
  address: AddressInfo,
  database: string,
  masterKey: MasterKey,
  extra: string[] = [],
): void {
  const { config } = loaded;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const lines = [
    `switchyard listening on ${url}`,
    ...extra,
    `  config:    ${loaded.source ?? '(none: built-in defaults)'}`,
    ...loaded.notes.map((n) => `  note:      ${n}`),
    `  providers: ${Object.entries(config.providers)
      .map(([n, p]) => `${n} (${p.type})`)
      .join(', ')}`,
    `  models:    ${Object.keys(config.models).join(', ')}`,
    `  database:  ${database}`,
    `  redis:     ${redisTargetOf(config.storage) ? `${describeRedisTarget(redisTargetOf(config.storage)!)} (names prefixed ${config.storage.redis_prefix})` : 'not configured (in-process state)'}`,
  ];
  if (masterKey.generated) {
    lines.push(
      `  master key (shown once; stored in ${config.data_dir}/master.key): ${masterKey.key}`,
      `  try: curl ${url}/v1/chat/completions -H "Authorization: Bearer $(cat ${config.data_dir}/master.key)" -H 'content-type: application/json' -d '{"model":"mock","messages":[{"role":"user","content":"hello"}]}'`,
    );
  } else {
    lines.push(
      `  master key: from ${masterKey.source === 'config' ? 'config/SWITCHYARD_MASTER_KEY' : `${config.data_dir}/master.key`}`,
    );
  }
  process.stderr.write(`${lines.join('\n')}\n`);
}

/** SIGTERM or SIGINT: a graceful stop (Gateway.close), then exit. */
function stopOnSignals(gateway: Gateway): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gateway.context.logger.info({ signal }, 'signal received');
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * `switchyard worker`: runs jobs (async completions, batches, webhooks) and
 * serves no HTTP. Workers scale apart from the API nodes; each sends a job's
 * requests through its own copy of the pipeline, against the shared database
 * (and Redis), so limits, budgets and the ledger are the API nodes' own.
 */
async function worker(configPath: string | undefined, queuesArg: string | undefined): Promise<void> {
  const queues = parseQueues(queuesArg);
  const loaded = loadOrExit(configPath);
  const gateway = await Gateway.create({ config: loaded.config, workQueues: queues });
  stopOnSignals(gateway);
  process.stderr.write(
    `switchyard worker running queues ${queues.join(', ')} (${gateway.context.jobs.queue.backend} queue, database ${gateway.context.database.description})\n`,
  );
}

function parseQueues(arg: string | undefined): QueueName[] {
  if (arg === undefined) return [...QUEUE_NAMES];
  const names = arg
    .split(',')
    .map((q) => q.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(QUEUE_NAMES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new UsageError(`--queues takes a comma-separated list of ${QUEUE_NAMES.join(', ')}`);
  }
  return names as QueueName[];
}

function checkConfig(configPath: string | undefined): void {
  const loaded = loadOrExit(configPath);
  const { config } = loaded;
  process.stderr.write(
    `config OK (${loaded.source ?? 'built-in defaults'}): ${Object.keys(config.providers).length} providers, ${Object.keys(config.models).length} models\n`,
  );
}

/**
 * `switchyard migrate`: applies pending schema migrations and exits (0: the schema
 * is current). Safe to run while old instances serve (migrations only add), and
 * from many places at once (one applies them under a lock). The Kubernetes
 * migration Job runs this before a rollout; the pods run with storage.migrate false.
 */
async function migrateCommand(configPath: string | undefined): Promise<void> {
  const { config } = loadOrExit(configPath);
  const database = await openDatabase({ url: config.storage.database_url, dataDir: config.data_dir });
  try {
    const { applied } = await migrate(database);
    process.stdout.write(`${JSON.stringify({ applied, schema: MIGRATION_NAMES.at(-1) })}\n`);
    process.stderr.write(
      applied.length > 0
        ? `database ${database.description}: applied ${applied.join(', ')}\n`
        : `database ${database.description}: schema already current (${MIGRATION_NAMES.at(-1)})\n`,
    );
  } finally {
    await database.close();
  }
}

async function keys(args: string[], values: Record<string, string | boolean | undefined>): Promise<void> {
  const [action, id] = args;
  // A mistyped action is a usage error before any database is opened.
  if (action === undefined) throw new UsageError('keys needs an action: create, list or revoke');
  if (!KEY_ACTIONS.includes(action)) throw unknownWord('keys action', action, KEY_ACTIONS);
  const loaded = loadOrExit(values['config'] as string | undefined);
  const { config } = loaded;
  const database = await openDatabase({ url: config.storage.database_url, dataDir: config.data_dir });
  const redisTarget = redisTargetOf(config.storage);
  const redis = redisTarget ? connectRedis(redisTarget, { name: 'switchyard-cli' }) : undefined;
  try {
    await migrate(database);
    // Key management needs no master key; resolving one here would generate it
    // silently and rob the first `start` of showing it.
    const store = new KeyStore(database, config.master_key ?? '');
    const quietLogger = {
      warn: (obj: object, msg: string) => process.stderr.write(`warning: ${msg} ${JSON.stringify(obj)}\n`),
    };
    if (action === 'create') {
      const name = values['name'];
      if (typeof name !== 'string' || name.length === 0) throw new UsageError('keys create needs --name');
      const days = values['expires-in'];
      const models = values['models'];
      const created = await store.create({
        name,
        tier: typeof values['tier'] === 'string' ? values['tier'] : null,
        allowedModels:
          typeof models === 'string'
            ? models
                .split(',')
                .map((m) => m.trim())
                .filter(Boolean)
            : null,
        expiresAt: typeof days === 'string' ? Date.now() + Number(days) * 86_400_000 : null,
      });
      process.stdout.write(`${JSON.stringify({ ...created.key, key: created.secret }, null, 2)}\n`);
      process.stderr.write('The key is shown once: store it now.\n');
    } else if (action === 'list') {
      process.stdout.write(`${JSON.stringify(await store.list(), null, 2)}\n`);
    } else if (action === 'revoke') {
      if (!id) throw new UsageError('keys revoke needs a key id');
      const revoked = await store.revoke(id);
      if (!revoked) {
        process.stderr.write(`no active key with id ${id}\n`);
        process.exitCode = 1;
        return;
      }
      if (redis) {
        const sync = await KeySync.start(store, {
          redis,
          redisKeys: redisKeysOf(config.storage),
          logger: quietLogger,
        });
        await sync.publish(id);
        await sync.close();
      }
      process.stderr.write(`revoked ${id}\n`);
    }
  } finally {
    if (redis) await redis.quit().catch(() => redis.disconnect());
    await database.close();
  }
}

/**
 * `switchyard import litellm PATH [--out FILE]`: the Switchyard config on
 * stdout (or in FILE), the report of every setting on stderr.
 */
function importConfig(args: string[], out: string | undefined, force: boolean): void {
  const [source, path, ...extra] = args;
  if (source === undefined) throw new UsageError('import needs a source: switchyard import litellm PATH');
  if (!IMPORT_SOURCES.includes(source)) throw unknownWord('import source', source, IMPORT_SOURCES);
  if (path === undefined) throw new UsageError('import litellm needs the path of a LiteLLM config');
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`);
  const file = resolve(path);
  if (!existsSync(file)) throw new UsageError(`file not found: ${file}`);
  if (out !== undefined && existsSync(resolve(out)) && !force) {
    throw new UsageError(`${resolve(out)} exists; --force to overwrite it`);
  }
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new UsageError(`${file}: ${doc.errors[0]?.message.split('\n')[0] ?? 'not YAML'}`);
  }
  let result: ReturnType<typeof importLiteLLMConfig>;
  try {
    result = importLiteLLMConfig(doc.toJS({ maxAliasCount: 100 }), { source: path });
  } catch (error) {
    if (error instanceof LiteLLMImportError) throw new UsageError(`${file}: ${error.message}`);
    throw error;
  }
  if (out === undefined) process.stdout.write(result.yaml);
  else writeFileSync(resolve(out), result.yaml, { mode: 0o600 });
  process.stderr.write(formatReport(result.report));
  if (out !== undefined) {
    process.stderr.write(`wrote ${resolve(out)}; check it with: switchyard check-config --config ${out}\n`);
  }
}

/**
 * `switchyard backup --out FILE`: an online, consistent backup of the SQL store
 * (SQLite's backup API, or pg_dump) while gateways keep serving. See
 * src/store/backup.ts and README, "Backup and recovery".
 */
async function backupCommand(
  configPath: string | undefined,
  args: string[],
  out: string | undefined,
  force: boolean,
): Promise<void> {
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  if (out === undefined) throw new UsageError('backup needs --out FILE');
  const { config } = loadOrExit(configPath);
  // A failure (BackupError: a file in the way, pg_dump missing) exits 1 with its message.
  const database = parseDatabaseUrl(config.storage.database_url, config.data_dir);
  const result = await backupDatabase(database, resolve(out), { force });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * `switchyard restore FILE`: puts a backup back into the configured database
 * (every gateway and worker using it stopped first); `--force` replaces a
 * database that holds data. Run `switchyard migrate` after restoring an older backup.
 */
async function restoreCommand(configPath: string | undefined, args: string[], force: boolean): Promise<void> {
  const [file, ...extra] = args;
  if (file === undefined) throw new UsageError('restore needs the backup file: switchyard restore FILE');
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`);
  const { config } = loadOrExit(configPath);
  const database = parseDatabaseUrl(config.storage.database_url, config.data_dir);
  const result = await restoreDatabase(database, resolve(file), { force });
  process.stdout.write(`${JSON.stringify({ restored: resolve(file), ...result })}\n`);
}

const OPTIONS = [
  '--config',
  '--name',
  '--tier',
  '--models',
  '--expires-in',
  '--queues',
  '--workers',
  '--out',
  '--force',
  '--help',
  '--version',
];

/** For `Unknown option '--confg'`: the nearest real one. */
function optionHint(error: Error): string {
  if ((error as { code?: string }).code !== 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return '';
  const option = /'(--?[^']+)'/.exec(error.message)?.[1];
  const near = option ? nearestWord(option, OPTIONS) : undefined;
  return near ? `did you mean '${near}'?\n` : '';
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      name: { type: 'string' },
      tier: { type: 'string' },
      models: { type: 'string' },
      'expires-in': { type: 'string' },
      queues: { type: 'string' },
      workers: { type: 'string', short: 'w' },
      out: { type: 'string', short: 'o' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.version || command === 'version') {
    process.stdout.write(`switchyard ${packageVersion()}\n`);
    return;
  }
  if (values.help || command === 'help' || command === undefined) {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = command === undefined && !values.help ? 2 : 0;
    return;
  }
  if (values.workers !== undefined && command !== 'start') {
    // `switchyard worker` runs job workers; HTTP worker processes are start's.
    throw new UsageError(
      `--workers is an option of start (HTTP worker processes); ${command === 'worker' ? 'run more `switchyard worker` processes to scale job workers' : `${command} takes none`}`,
    );
  }
  switch (command) {
    case 'start':
      return start(values.config, values.workers);
    case 'worker':
      return worker(values.config, values.queues);
    case 'check-config':
      return checkConfig(values.config);
    case 'migrate':
      return migrateCommand(values.config);
    case 'keys':
      return keys(rest, values);
    case 'import':
      return importConfig(rest, values.out, values.force === true);
    case 'backup':
      return backupCommand(values.config, rest, values.out, values.force === true);
    case 'restore':
      return restoreCommand(values.config, rest, values.force === true);
    default:
      throw unknownWord('command', command, COMMANDS);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`${(error as Error).message}\n${optionHint(error as Error)}${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(`switchyard: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
