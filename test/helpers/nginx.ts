/**
 * A private nginx (Debian's package, installed when missing) in front of
 * gateway instances, running deploy/nginx/switchyard.conf itself: the file is
 * rendered with the instances' ports, a free loopback listen port and the
 * per-client rate, then wrapped in an nginx.conf whose pid, logs and temp
 * paths all live in a throw-away directory. `daemon off`, stopped by its PID.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { ensureBinary, freePort } from './services.ts';

const execFileAsync = promisify(execFile);

export const NGINX_TEMPLATE = resolve(import.meta.dirname, '../../deploy/nginx/switchyard.conf');

export interface NginxOptions {
  /** Loopback ports of the gateway instances (the upstream pool). */
  upstreamPorts: readonly number[];
  /** Requests a second per client address for the defence-in-depth zone; the shipped value by default. */
  perClientRate?: number;
  /** Its burst; the shipped value by default. */
  perClientBurst?: number;
  /** Directives added to the server block (e.g. a test's diagnostic header). */
  extraServerDirectives?: string[];
}

export interface Nginx {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + '/v1', for SDK clients. */
  baseUrl: string;
  dir: string;
  errorLog(): string;
  stop(): Promise<void>;
}

function findNginx(): string | undefined {
  return existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined;
}

/**
 * deploy/nginx/switchyard.conf with the servers, listen port and rate filled in.
 * Each replacement must find its line exactly once: a template that drifts fails here, loudly.
 */
export function renderNginxConfig(template: string, options: NginxOptions & { listenPort: number }): string {
  const replaceOnce = (text: string, pattern: RegExp, replacement: string, what: string): string => {
    const matches = text.match(new RegExp(pattern.source, `${pattern.flags.replace('g', '')}g`));
    if (matches?.length !== 1) {
      throw new Error(`${NGINX_TEMPLATE}: expected exactly one ${what}, found ${matches?.length ?? 0}`);
    }
    return text.replace(pattern, replacement);
  };
  // Each instance gets the parameters the template gives its first server (max_fails, fail_timeout).
  const parameters = /# servers: begin\n\s*server \S+([^;]*);/.exec(template)?.[1] ?? '';
  const servers = options.upstreamPorts
    .map((port) => `    server 127.0.0.1:${port}${parameters};`)
    .join('\n');
  let text = replaceOnce(
    template,
    /( *# servers: begin\n)[\s\S]*?( *# servers: end\n)/,
    `$1${servers}\n$2`,
    'servers block',
  );
  text = replaceOnce(
    text,
    /^( *)listen 8080;$/m,
    `$1listen 127.0.0.1:${options.listenPort};${(options.extraServerDirectives ?? []).map((d) => `\n$1${d}`).join('')}`,
    'listen line',
  );
  if (options.perClientRate !== undefined) {
    text = replaceOnce(text, /rate=\d+r\/s;/, `rate=${options.perClientRate}r/s;`, 'rate');
  }
  if (options.perClientBurst !== undefined) {
    text = text.replace(/burst=\d+ nodelay;/g, `burst=${options.perClientBurst} nodelay;`);
  }
  return text;
}

/** The nginx.conf around the rendered file: everything nginx writes goes to `dir`. */
function mainConfig(dir: string, include: string): string {
  const path = (name: string) => join(dir, name);
  return [
    // Root starts workers as `nobody` by default, which cannot write this private dir.
    ...(process.getuid?.() === 0 ? ['user root root;'] : []),
    'daemon off;',
    // One worker: the two cores of this machine are the gateways'.
    'worker_processes 1;',
    `pid ${path('nginx.pid')};`,
    `error_log ${path('error.log')} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    `  access_log ${path('access.log')};`,
    `  client_body_temp_path ${path('client_body')};`,
    `  proxy_temp_path ${path('proxy')};`,
    `  fastcgi_temp_path ${path('fastcgi')};`,
    `  uwsgi_temp_path ${path('uwsgi')};`,
    `  scgi_temp_path ${path('scgi')};`,
    `  include ${include};`,
    '}',
    '',
  ].join('\n');
}

export async function startNginx(options: NginxOptions): Promise<Nginx> {
  const nginx = await ensureBinary('nginx', findNginx, ['nginx']);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-'));
  mkdirSync(join(dir, 'conf'));
  const template = readFileSync(NGINX_TEMPLATE, 'utf8');
  for (let tries = 0; ; tries++) {
    const listenPort = await freePort();
    const site = join(dir, 'conf', 'switchyard.conf');
    writeFileSync(site, renderNginxConfig(template, { ...options, listenPort }));
    const conf = join(dir, 'conf', 'nginx.conf');
    writeFileSync(conf, mainConfig(dir, site));
    const args = ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')];
    // A config error shows up here with nginx's own message.
    await execFileAsync(nginx, ['-t', '-q', ...args]);
    const child = spawn(nginx, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const url = `http://127.0.0.1:${listenPort}`;
    if (await waitListening(listenPort, exited)) {
      return {
        url,
        baseUrl: `${url}/v1`,
        dir,
        errorLog: () => readFileSync(join(dir, 'error.log'), 'utf8'),
        stop: async () => {
          await stopChild(child, exited);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child, exited);
    // The port was taken between the probe and nginx's bind: try another.
    if (tries >= 3) throw new Error(`nginx did not start: ${stderr}\n${readLog(dir)}`);
  }
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {
    return '';
  }
}

/** SIGQUIT: nginx's graceful stop (finish the requests in flight); SIGKILL if it lingers. */
async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGQUIT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** True once nginx answers on `port` (its own 404 for /metrics: no instance is asked), false if it exits first. */
async function waitListening(port: number, exited: Promise<void>): Promise<boolean> {
  let dead = false;
  void exited.then(() => {
    dead = true;
  });
  for (let i = 0; i < 100 && !dead; i++) {
    const answered = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/metrics', method: 'GET' }, (res) => {
        res.resume();
        resolve(true);
      });
      req.once('error', () => resolve(false));
      req.end();
    });
    if (answered) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}
