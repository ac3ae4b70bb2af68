/**
 * Renders a Kustomize overlay (deploy/kubernetes/overlays/*) as `kubectl
 * kustomize` would, for the tests: neither kubectl nor kustomize can be
 * installed here. It implements the subset of Kustomize the manifests use, with
 * Kustomize's semantics, and refuses anything else (an unknown kustomization
 * field or patch directive is an error, never silently ignored):
 *
 * - `resources`: YAML files (several documents each) and directories holding a
 *   kustomization.yaml (rendered first, recursively);
 * - `patches` with `path`: strategic-merge patches, matched by apiVersion, kind
 *   and name; `$patch: delete` removes the resource; lists merge on the
 *   Kubernetes patch merge keys (containers, env, volumes by `name`;
 *   volumeMounts by `mountPath`; container ports by `containerPort`), other lists
 *   are replaced; a null value removes a field;
 * - `namespace`, `images` (`name`, `newName`, `newTag`, `digest`), `replicas`.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
};

const KNOWN_FIELDS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'patches',
  'namespace',
  'images',
  'replicas',
]);

/** List fields merged entry by entry (their patchMergeKey in the Kubernetes API), the rest are replaced. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
};

const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function readDocuments(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as Manifest | null;
    return value === null ? [] : [value];
  });
}

/** Strategic merge of `patch` into `target` (a new object; neither input changes). */
export function strategicMerge(target: unknown, patch: unknown, field = ''): unknown {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (key === undefined || !Array.isArray(target)) return structuredClone(patch);
    const merged = [...(target as Json[])];
    for (const item of patch as Json[]) {
      const at = merged.findIndex((existing) => existing[key] === item[key]);
      if (item['$patch'] === 'delete') {
        if (at >= 0) merged.splice(at, 1);
      } else if (at >= 0) merged[at] = strategicMerge(merged[at], item) as Json;
      else merged.push(structuredClone(item));
    }
    return merged;
  }
  if (!isObject(patch)) return patch;
  if (patch['$patch'] !== undefined && patch['$patch'] !== 'merge') {
    throw new Error(`unsupported patch directive $patch: ${String(patch['$patch'])}`);
  }
  const result: Json = isObject(target) ? { ...target } : {};
  for (const [name, value] of Object.entries(patch)) {
    if (name === '$patch') continue;
    if (name.startsWith('$')) throw new Error(`unsupported patch directive ${name}`);
    if (value === null) delete result[name];
    else result[name] = strategicMerge(result[name], value, name);
  }
  return result;
}

const sameResource = (a: Manifest, b: Manifest) =>
  a.apiVersion === b.apiVersion && a.kind === b.kind && a.metadata.name === b.metadata.name;

function podSpec(resource: Manifest): Json | undefined {
  if (!POD_TEMPLATE_KINDS.has(resource.kind)) return undefined;
  return ((resource['spec'] as Json)['template'] as Json)['spec'] as Json;
}

/** `registry/name:tag@sha256:…` → `registry/name`. */
function imageName(image: string): string {
  const withoutDigest = image.split('@')[0]!;
  const lastSlash = withoutDigest.lastIndexOf('/');
  const colon = withoutDigest.indexOf(':', lastSlash + 1);
  return colon < 0 ? withoutDigest : withoutDigest.slice(0, colon);
}

/** The rendered resources of the kustomization in `dir`. */
export function renderKustomization(dir: string): Manifest[] {
  const file = join(dir, 'kustomization.yaml');
  const kustomization = readDocuments(file)[0] as unknown as Json;
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field))
      throw new Error(`${file}: kustomization field ${field} is not supported by this renderer`);
  }
  let resources: Manifest[] = [];
  for (const entry of (kustomization['resources'] ?? []) as string[]) {
    const path = join(dir, entry);
    resources.push(...(statSync(path).isDirectory() ? renderKustomization(path) : readDocuments(path)));
  }
  for (const entry of (kustomization['patches'] ?? []) as Json[]) {
    const extra = Object.keys(entry).filter((k) => k !== 'path');
    if (extra.length > 0)
      throw new Error(`${file}: patch fields ${extra.join(', ')} are not supported by this renderer`);
    for (const patch of readDocuments(join(dir, entry['path'] as string))) {
      const at = resources.findIndex((r) => sameResource(r, patch));
      if (at < 0) throw new Error(`${file}: patch ${patch.kind}/${patch.metadata.name} matches no resource`);
      if ((patch as Json)['$patch'] === 'delete') resources = resources.filter((_, i) => i !== at);
      else resources[at] = strategicMerge(resources[at], patch) as Manifest;
    }
  }
  const namespace = kustomization['namespace'] as string | undefined;
  if (namespace !== undefined) {
    resources = resources.map((r) => ({ ...r, metadata: { ...r.metadata, namespace } }));
  }
  for (const image of (kustomization['images'] ?? []) as Json[]) {
    for (const resource of resources) {
      const spec = podSpec(resource);
      for (const container of [
        ...((spec?.['initContainers'] ?? []) as Json[]),
        ...((spec?.['containers'] ?? []) as Json[]),
      ]) {
        const current = container['image'] as string;
        if (imageName(current) !== image['name']) continue;
        const name = (image['newName'] as string | undefined) ?? imageName(current);
        const tag = image['newTag'] ?? /:([^:/@]+)(@|$)/.exec(current.split('@')[0]!)?.[1];
        container['image'] =
          `${name}${tag ? `:${String(tag)}` : ''}${image['digest'] ? `@${String(image['digest'])}` : ''}`;
      }
    }
  }
  for (const replicas of (kustomization['replicas'] ?? []) as Json[]) {
    const target = resources.find(
      (r) =>
        r.metadata.name === replicas['name'] && ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(r.kind),
    );
    if (target === undefined)
      throw new Error(`${file}: replicas for ${String(replicas['name'])} match no workload`);
    (target['spec'] as Json)['replicas'] = replicas['count'];
  }
  return resources;
}
