/**
 * Writes the CycloneDX 1.5 SBOM of an installed application directory:
 *
 *   node scripts/write-sbom.ts APP_DIR > sbom.cdx.json
 *
 * It lists exactly the packages in APP_DIR/node_modules, read from npm's record
 * of that tree (node_modules/.package-lock.json): name, version, purl, the
 * registry's SHA-512 and the licence. Why not `npm sbom --omit=dev`: npm 11
 * drops production dependencies that a dev dependency also uses (undici and zod
 * here, both deduplicated under openai), and in a production-only tree it
 * refuses to run because the dev dependencies are missing. The Dockerfile's
 * deps stage runs this after `npm ci --omit=dev`, so the SBOM describes the
 * node_modules the image ships.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  version?: string;
  integrity?: string;
  license?: string;
  link?: boolean;
  resolved?: string;
}

interface Component {
  'bom-ref': string;
  type: 'library';
  name: string;
  version: string;
  purl: string;
  hashes?: { alg: 'SHA-512'; content: string }[];
  licenses?: { license: { id: string } }[] | { expression: string }[];
}

/** `pkg:npm/%40scope/name@1.2.3` (the purl spec encodes the scope's @). */
function purl(name: string, version: string): string {
  return `pkg:npm/${name.replace(/^@/, '%40')}@${version}`;
}

function licenses(spdx: string | undefined): Component['licenses'] {
  if (spdx === undefined) return undefined;
  // A single identifier is an id; anything with AND/OR/WITH is an expression.
  return /\s/.test(spdx) ? [{ expression: spdx }] : [{ license: { id: spdx } }];
}

/** The CycloneDX document for the installed tree under `appDir`. */
export function sbomFor(appDir: string): object {
  const app = JSON.parse(readFileSync(join(appDir, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    license?: string;
  };
  const tree = JSON.parse(readFileSync(join(appDir, 'node_modules', '.package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const components = new Map<string, Component>();
  for (const [path, entry] of Object.entries(tree.packages)) {
    // Links point at a directory listed under its own path; the root is the app.
    if (entry.link || entry.version === undefined || !path.includes('node_modules/')) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const ref = `${name}@${entry.version}`;
    if (components.has(ref)) continue;
    const sha512 = entry.integrity?.startsWith('sha512-')
      ? Buffer.from(entry.integrity.slice('sha512-'.length), 'base64').toString('hex')
      : undefined;
    const license = entry.license ?? installedLicense(join(appDir, path));
    components.set(ref, {
      'bom-ref': ref,
      type: 'library',
      name,
      version: entry.version,
      purl: purl(name, entry.version),
      ...(sha512 ? { hashes: [{ alg: 'SHA-512' as const, content: sha512 }] } : {}),
      ...(license ? { licenses: licenses(license) } : {}),
    });
  }
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: 'switchyard scripts/write-sbom.ts' }] },
      component: {
        'bom-ref': `${app.name}@${app.version}`,
        type: 'application',
        name: app.name,
        version: app.version,
        purl: purl(app.name, app.version),
        ...(app.license ? { licenses: licenses(app.license) } : {}),
      },
    },
    components: [...components.values()].sort((a, b) => a['bom-ref'].localeCompare(b['bom-ref'])),
  };
}

function installedLicense(dir: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { license?: unknown };
    return typeof pkg.license === 'string' ? pkg.license : undefined;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: node scripts/write-sbom.ts APP_DIR > sbom.cdx.json\n');
    process.exit(2);
  }
  process.stdout.write(`${JSON.stringify(sbomFor(dir), null, 2)}\n`);
}
