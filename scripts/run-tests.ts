/**
 * Test runner behind `npm test`: starts one private Redis and one PostgreSQL,
 * runs `node --test` over test/**\/*.test.ts (or the files given as arguments),
 * then checks that no secret a test used ended up in any log, and stops the
 * servers whatever happens.
 *
 * Environment given to the tests:
 *   TEST_REDIS_URL           redis://127.0.0.1:PORT
 *   TEST_DATABASE_URL        postgres://user:pass@127.0.0.1:PORT/postgres (may CREATE DATABASE)
 *   SWITCHYARD_TEST_LOG_DIR  where tests write gateway logs, plus `secrets.txt`
 *                            (one secret per line) that the final scan looks for
 */
import { spawn } from 'node:child_process';
import { globSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { type PostgresService, type Service, startPostgres, startRedis } from '../test/helpers/services.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SECRETS_FILE = 'secrets.txt';
// node --test's closing summary; repeated last if we print anything after it.
const SUMMARY_LINE = /^(?:ℹ|#) (?:tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

async function main(): Promise<number> {
  const files = testFiles(process.argv.slice(2));
  if (files.length === 0) {
    console.error('run-tests: no test files found');
    return 1;
  }

  const logDir = mkdtempSync(join(tmpdir(), 'switchyard-test-logs-'));
  let redis: Service | undefined;
  let postgres: PostgresService | undefined;
  let child: ReturnType<typeof spawn> | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = signal;
    child?.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const [redisResult, postgresResult] = await Promise.allSettled([startRedis(), startPostgres()]);
    if (redisResult.status === 'fulfilled') redis = redisResult.value;
    if (postgresResult.status === 'fulfilled') postgres = postgresResult.value;
    if (redis === undefined || postgres === undefined) {
      for (const r of [redisResult, postgresResult]) {
        if (r.status === 'rejected') console.error('run-tests: could not start a test service:', r.reason);
      }
      return 1;
    }
    if (interrupted) return 130;
    // The database password is a secret too: it must never reach a log.
    writeFileSync(join(logDir, SECRETS_FILE), `${postgres.password}\n`);

    const summary: string[] = [];
    const exitCode = await new Promise<number>((resolveExit) => {
      child = spawn(
        process.execPath,
        [
          '--test',
          '--test-reporter=spec',
          '--test-concurrency=2',
          '--test-timeout=120000',
          ...files.map((f) => relative(ROOT, f)),
        ],
        {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'inherit'],
          env: {
            ...process.env,
            TEST_REDIS_URL: redis?.url,
            TEST_DATABASE_URL: postgres?.url,
            SWITCHYARD_TEST_LOG_DIR: logDir,
            ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}),
          },
        },
      );
      let partial = '';
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (chunk: string) => {
        process.stdout.write(chunk);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) trackSummary(summary, line);
      });
      child.once('error', (err) => {
        console.error('run-tests: could not run node --test:', err.message);
        resolveExit(1);
      });
      child.once('exit', (code, signal) => {
        if (partial !== '') trackSummary(summary, partial);
        resolveExit(code ?? (signal ? 1 : 0));
      });
    });

    const { leaks, files: scanned, secrets } = scanForSecrets(logDir);
    console.log(
      `\nrun-tests: scanned ${scanned} log files for ${secrets} secrets used by the tests: ${leaks.length === 0 ? 'none found' : `${leaks.length} found`}`,
    );
    // Keep node --test's summary as the closing lines (CI reads them).
    if (leaks.length === 0) for (const line of summary) console.log(line);
    if (leaks.length > 0) {
      console.log(`\nrun-tests: secrets found in test logs (${logDir}):`);
      for (const leak of leaks) console.log(`  ${leak}`);
      for (const line of summary) console.log(line);
      return 1;
    }
    if (interrupted) return 130;
    return exitCode;
  } finally {
    await Promise.allSettled([redis?.stop(), postgres?.stop()]);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (process.env['SWITCHYARD_KEEP_TEST_LOGS'] === undefined)
      rmSync(logDir, { recursive: true, force: true });
    else console.error(`run-tests: test logs kept in ${logDir}`);
  }
}

function testFiles(args: string[]): string[] {
  if (args.length > 0) return args.map((a) => resolve(process.cwd(), a));
  return globSync('test/**/*.test.ts', { cwd: ROOT })
    .sort()
    .map((f) => join(ROOT, f));
}

function trackSummary(summary: string[], line: string): void {
  // The summary is the last block; a non-summary line after it starts over.
  const plain = stripVTControlCharacters(line);
  if (SUMMARY_LINE.test(plain)) summary.push(line);
  else if (plain.trim() !== '') summary.length = 0;
}

/** Every `file:line` under `logDir` (except secrets.txt) containing a secret; the secret itself is never printed. */
function scanForSecrets(logDir: string): { leaks: string[]; files: number; secrets: number } {
  let secrets: string[];
  try {
    secrets = readFileSync(join(logDir, SECRETS_FILE), 'utf8')
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  } catch {
    return { leaks: [], files: 0, secrets: 0 };
  }
  const found: string[] = [];
  const files = listFiles(logDir);
  for (const file of files) {
    if (file === join(logDir, SECRETS_FILE)) continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const index = secrets.findIndex((s) => line.includes(s));
      if (index >= 0)
        found.push(`${relative(logDir, file)}:${i + 1} contains secret #${index + 1} of ${SECRETS_FILE}`);
    });
  }
  return { leaks: found, files: files.length - 1, secrets: secrets.length };
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

process.exitCode = await main();
