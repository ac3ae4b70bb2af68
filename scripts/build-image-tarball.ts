/**
 * Builds the container image's application layer as a .tar.gz, without Docker.
 *
 *   node scripts/build-image-tarball.ts [--out FILE]      (needs a built dist/: npm run build)
 *
 * The tarball holds exactly what deploy/Dockerfile's final stage puts in /app:
 * bin/, dist/, package.json, package-lock.json, vendor/ (the lockfile links a
 * stub from there), production dependencies only (`npm ci --omit=dev
 * --omit=optional --ignore-scripts`: no compiler, no bundled Node, no install
 * scripts) and the CycloneDX SBOM of those dependencies (sbom.cdx.json, by
 * scripts/write-sbom.ts). The
 * same steps, in the same order, as the Dockerfile, so a test can extract this,
 * make it read-only, and run the gateway from it as the image would.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { sbomFor } from './write-sbom.ts';

const ROOT = resolve(import.meta.dirname, '..');

/** What the final stage copies from the build context and the build stage (see deploy/Dockerfile). */
export const IMAGE_APP_PARTS = ['bin', 'dist', 'package.json', 'package-lock.json', 'vendor'] as const;

export interface ImageTarball {
  /** The .tar.gz written. */
  file: string;
  /** The number of packages the SBOM lists. */
  sbomComponents: number;
}

/** Assembles /app in a temporary directory and packs it into `out` (top-level directory `app/`). */
export function buildImageTarball(out: string): ImageTarball {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const stage = mkdtempSync(join(tmpdir(), 'switchyard-image-'));
  try {
    const app = join(stage, 'app');
    mkdirSync(app);
    for (const part of IMAGE_APP_PARTS) cpSync(join(ROOT, part), join(app, part), { recursive: true });
    const npm = (args: string[], cwd: string) =>
      execFileSync('npm', args, {
        cwd,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        // The lockfile is the whole truth: no audit, no funding notes, no update checks.
        env: {
          ...process.env,
          npm_config_audit: 'false',
          npm_config_fund: 'false',
          npm_config_update_notifier: 'false',
        },
        maxBuffer: 64 * 1024 * 1024,
      });
    npm(['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--prefer-offline'], app);
    // Of the tree just installed, as the Dockerfile's deps stage does (see scripts/write-sbom.ts).
    const sbom = sbomFor(app) as { components: unknown[] };
    writeFileSync(join(app, 'sbom.cdx.json'), `${JSON.stringify(sbom, null, 2)}\n`);
    const components = sbom.components.length;
    mkdirSync(dirname(resolve(out)), { recursive: true });
    execFileSync('tar', ['-czf', resolve(out), '-C', stage, '--owner=0', '--group=0', 'app']);
    return { file: resolve(out), sbomComponents: components };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: 'string', short: 'o' } } });
  const built = buildImageTarball(values.out ?? join(ROOT, 'test-artifacts', 'switchyard-image.tar.gz'));
  process.stderr.write(`wrote ${built.file} (SBOM: ${built.sbomComponents} components)\n`);
}
