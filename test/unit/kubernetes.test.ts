/**
 * deploy/kubernetes: each overlay (the three value sets: demo, staging,
 * production) is rendered (test/helpers/kustomize.ts, Kustomize semantics) and
 * every resource validated against the Kubernetes OpenAPI schema (the
 * kubernetes-models package's validators, generated from the Kubernetes API's
 * OpenAPI document) or, for the ServiceMonitor, the prometheus-operator CRD's
 * schema (@kubernetes-models/prometheus-operator, generated from the CRD). Then
 * what the schema cannot know: probes on the right endpoints and ports, drain
 * timing, resources, selectors that select, references that resolve, no secret
 * in any manifest, and the gateway config in the ConfigMap accepted by the
 * gateway's own loader.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { type Manifest, renderKustomization, strategicMerge } from '../helpers/kustomize.ts';

const KUBE = join(ROOT, 'deploy', 'kubernetes');
const OVERLAYS = ['demo', 'staging', 'production'] as const;

/** The package exporting the generated model of each API group version. */
const MODEL_MODULES: Record<string, string> = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'batch/v1': 'kubernetes-models/batch/v1',
  'policy/v1': 'kubernetes-models/policy/v1',
  'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

type ModelClass = new (data: unknown) => { validate(): void };

async function validateAgainstSchema(resource: Manifest): Promise<void> {
  const module = MODEL_MODULES[resource.apiVersion];
  assert.ok(module, `${resource.apiVersion} has a schema`);
  const Model = ((await import(module)) as Record<string, ModelClass>)[resource.kind];
  assert.ok(Model, `${resource.apiVersion} ${resource.kind} has a schema`);
  try {
    new Model(resource).validate();
  } catch (error) {
    assert.fail(`${resource.kind}/${resource.metadata.name}: ${(error as Error).message}`);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests, read field by field in assertions after schema validation
type Json = Record<string, any>;
const find = (resources: Manifest[], kind: string, name: string) => {
  const found = resources.find((r) => r.kind === kind && r.metadata.name === name);
  assert.ok(found, `${kind}/${name} rendered`);
  return found as Manifest & Json;
};
const podSpecs = (resources: Manifest[]) =>
  resources
    .filter((r) => ['Deployment', 'StatefulSet', 'Job'].includes(r.kind))
    .map((r) => ({ owner: `${r.kind}/${r.metadata.name}`, spec: (r as Json)['spec'].template.spec as Json }));
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const RENDERED = Object.fromEntries(
  OVERLAYS.map((o) => [o, renderKustomization(join(KUBE, 'overlays', o))]),
) as Record<(typeof OVERLAYS)[number], Manifest[]>;

describe('Kubernetes manifests', () => {
  for (const overlay of OVERLAYS) {
    describe(`overlay ${overlay}`, () => {
      const resources = RENDERED[overlay];

      it('renders, and every resource validates against its OpenAPI / CRD schema', async () => {
        assert.ok(resources.length >= 7);
        for (const resource of resources) await validateAgainstSchema(resource);
        const names = resources.map((r) => `${r.kind}/${r.metadata.name}`);
        assert.equal(new Set(names).size, names.length, 'no duplicates');
        for (const resource of resources)
          assert.equal(
            resource.metadata.namespace,
            `switchyard${overlay === 'production' ? '' : `-${overlay}`}`,
          );
      });

      it('runs the gateway with startup, liveness and readiness probes and a drain before SIGTERM', () => {
        const deployment = find(resources, 'Deployment', 'switchyard');
        const pod = deployment['spec'].template.spec;
        const gateway = pod.containers.find((c: Json) => c.name === 'gateway');
        const portNames = gateway.ports.map((p: Json) => p.name);
        assert.equal(gateway.startupProbe.httpGet.path, '/health/live');
        assert.equal(gateway.livenessProbe.httpGet.path, '/health/live');
        assert.equal(gateway.readinessProbe.httpGet.path, '/health/ready');
        for (const probe of [gateway.startupProbe, gateway.livenessProbe, gateway.readinessProbe]) {
          assert.ok(portNames.includes(probe.httpGet.port), `probe port ${probe.httpGet.port} exists`);
        }
        const preStopSeconds = Number(gateway.lifecycle.preStop.exec.command[1]);
        assert.deepEqual(gateway.lifecycle.preStop.exec.command, ['sleep', String(preStopSeconds)]);
        const config = gatewayConfig(resources);
        // preStop, then the gateway's own drain, must end before the kubelet's SIGKILL.
        assert.ok(
          pod.terminationGracePeriodSeconds > preStopSeconds + config.server.shutdown.grace_ms / 1000,
        );
        assert.deepEqual(deployment['spec'].strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
        const ports = Object.fromEntries(gateway.ports.map((p: Json) => [p.name, p.containerPort]));
        assert.equal(ports.http, config.server.port);
        assert.equal(ports.metrics, config.server.metrics_port);
      });

      it('gives every container resource requests and limits, a non-root user and a read-only root', () => {
        for (const { owner, spec } of podSpecs(resources)) {
          assert.equal(spec['securityContext'].runAsNonRoot, true, owner);
          assert.ok(spec['securityContext'].runAsUser > 0, owner);
          assert.equal(spec['automountServiceAccountToken'], false, owner);
          for (const container of spec['containers'] as Json[]) {
            const where = `${owner} ${container['name']}`;
            for (const part of ['requests', 'limits']) {
              assert.ok(
                container['resources'][part].cpu && container['resources'][part].memory,
                `${where} ${part}`,
              );
            }
            assert.equal(container['securityContext'].allowPrivilegeEscalation, false, where);
            assert.deepEqual(container['securityContext'].capabilities.drop, ['ALL'], where);
            assert.doesNotMatch(container['image'], /:latest$|^[^:]+$/, `${where}: a pinned tag`);
            if (container['name'] !== 'postgres')
              assert.equal(container['securityContext'].readOnlyRootFilesystem, true, where);
          }
        }
      });

      it('selects the gateway pods from the Service, PodDisruptionBudget, autoscaler and ServiceMonitor', () => {
        const deployment = find(resources, 'Deployment', 'switchyard');
        const labels = deployment['spec'].template.metadata.labels;
        assert.ok(matches(deployment['spec'].selector.matchLabels, labels));
        const service = find(resources, 'Service', 'switchyard');
        assert.ok(matches(service['spec'].selector, labels));
        const containerPorts = deployment['spec'].template.spec.containers[0].ports.map((p: Json) => p.name);
        for (const port of service['spec'].ports) assert.ok(containerPorts.includes(port.targetPort));
        const pdb = find(resources, 'PodDisruptionBudget', 'switchyard');
        assert.ok(matches(pdb['spec'].selector.matchLabels, labels));
        assert.equal(pdb['spec'].maxUnavailable, 1);
        const hpa = find(resources, 'HorizontalPodAutoscaler', 'switchyard');
        assert.deepEqual(hpa['spec'].scaleTargetRef, {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: 'switchyard',
        });
        assert.ok(hpa['spec'].minReplicas >= 2 && hpa['spec'].maxReplicas > hpa['spec'].minReplicas);
        assert.ok(deployment['spec'].replicas >= hpa['spec'].minReplicas);
        const cpu = hpa['spec'].metrics.find((m: Json) => m.type === 'Resource');
        assert.deepEqual(cpu.resource.name, 'cpu');
        const rps = hpa['spec'].metrics.find((m: Json) => m.type === 'Pods');
        const adapter = parse(readFileSync(join(KUBE, 'prometheus-adapter', 'values.yaml'), 'utf8'));
        assert.equal(
          rps.pods.metric.name,
          adapter.rules.custom[0].name.as,
          'the metric prometheus-adapter serves',
        );
        assert.match(adapter.rules.custom[0].seriesQuery, /^switchyard_requests_total\{/);
        const monitor = resources.find((r) => r.kind === 'ServiceMonitor') as Json | undefined;
        if (overlay === 'demo') assert.equal(monitor, undefined, 'the demo needs no prometheus-operator');
        else {
          assert.ok(matches(monitor!['spec'].selector.matchLabels, service.metadata.labels!));
          assert.ok(service['spec'].ports.some((p: Json) => p.name === monitor!['spec'].endpoints[0].port));
        }
      });

      it('migrates in a Job before the rollout, and the pods refuse an older schema', () => {
        const job = find(resources, 'Job', 'switchyard-migrate');
        const deployment = find(resources, 'Deployment', 'switchyard');
        const migrate = job['spec'].template.spec.containers[0];
        const gateway = deployment['spec'].template.spec.containers[0];
        assert.deepEqual(migrate.args, ['migrate']);
        assert.equal(migrate.image, gateway.image, 'the same version migrates and serves');
        assert.equal(job['metadata'].annotations?.['argocd.argoproj.io/hook'], 'PreSync');
        const env = Object.fromEntries(gateway.env.map((e: Json) => [e.name, e]));
        assert.equal(env.SWITCHYARD_MIGRATE.value, 'false');
        assert.equal(gatewayConfig(resources).storage.migrate, false);
      });

      it('wires config from the ConfigMap and secrets only from the Secret, and holds no secret itself', () => {
        const configMaps = new Set(
          resources.filter((r) => r.kind === 'ConfigMap').map((r) => r.metadata.name),
        );
        for (const { owner, spec } of podSpecs(resources)) {
          const claims = resources
            .filter((r) => `${r.kind}/${r.metadata.name}` === owner)
            .flatMap((r) =>
              ((r as Json)['spec'].volumeClaimTemplates ?? []).map((c: Json) => c.metadata.name),
            );
          const volumes = new Set([...(spec['volumes'] ?? []).map((v: Json) => v.name), ...claims]);
          for (const volume of spec['volumes'] ?? []) {
            if (volume.configMap)
              assert.ok(configMaps.has(volume.configMap.name), `${owner}: ${volume.configMap.name}`);
          }
          for (const container of spec['containers']) {
            for (const variable of container.env ?? []) {
              if (variable.valueFrom?.secretKeyRef) {
                assert.equal(variable.valueFrom.secretKeyRef.name, 'switchyard-secrets', owner);
              } else {
                assert.doesNotMatch(
                  variable.name,
                  /KEY|PASSWORD|SECRET|TOKEN|_URL/,
                  `${owner} ${variable.name} is not inline`,
                );
              }
            }
            for (const mount of container.volumeMounts ?? []) {
              assert.ok(volumes.has(mount.name), `${owner}: volume ${mount.name}`);
            }
          }
        }
        assert.equal(
          resources.filter((r) => r.kind === 'Secret').length,
          0,
          'the Secret is created apart (README)',
        );
        assert.doesNotMatch(JSON.stringify(resources), /sk-[A-Za-z0-9]{8,}|:\/\/[^/$\s"]+:[^@$\s"]+@/);
      });
    });
  }

  it('the three value sets differ where they should', () => {
    const replicas = (o: (typeof OVERLAYS)[number]) =>
      find(RENDERED[o], 'Deployment', 'switchyard')['spec'].replicas;
    const hpa = (o: (typeof OVERLAYS)[number]) =>
      find(RENDERED[o], 'HorizontalPodAutoscaler', 'switchyard')['spec'];
    assert.deepEqual(OVERLAYS.map(replicas), [2, 2, 3]);
    assert.deepEqual(
      OVERLAYS.map((o) => [hpa(o).minReplicas, hpa(o).maxReplicas]),
      [
        [2, 3],
        [2, 4],
        [3, 20],
      ],
    );
    // Patches merged the containers by name, keeping the base's probes and env.
    const production = find(RENDERED.production, 'Deployment', 'switchyard')['spec'].template.spec;
    assert.equal(production.containers.length, 1);
    assert.equal(production.containers[0].image, 'registry.example.com/switchyard:0.1.0');
    assert.equal(production.containers[0].resources.requests.cpu, '1');
    assert.ok(production.containers[0].readinessProbe);
    assert.ok(production.containers[0].env.some((e: Json) => e.name === 'DATABASE_REPLICA_URLS'));
    assert.ok(production.containers[0].env.some((e: Json) => e.name === 'SWITCHYARD_MASTER_KEY'));
    assert.ok(production.affinity.podAntiAffinity);
    assert.equal(
      find(RENDERED.staging, 'Deployment', 'switchyard')['spec'].template.spec.containers[0].image,
      'switchyard:0.1.0',
    );
  });

  it('the demo brings its own Redis and PostgreSQL as StatefulSets on persistent volumes', () => {
    for (const name of ['redis', 'postgres']) {
      const set = find(RENDERED.demo, 'StatefulSet', name);
      assert.equal(set['spec'].serviceName, name);
      assert.equal(find(RENDERED.demo, 'Service', name)['spec'].clusterIP, 'None');
      assert.ok(set['spec'].volumeClaimTemplates[0].spec.resources.requests.storage);
      assert.ok(set['spec'].template.spec.containers[0].readinessProbe);
    }
    for (const overlay of ['staging', 'production'] as const) {
      assert.equal(RENDERED[overlay].filter((r) => r.kind === 'StatefulSet').length, 0);
    }
  });

  it('the schemas reject a broken manifest (the validation is real)', async () => {
    const deployment = structuredClone(find(RENDERED.production, 'Deployment', 'switchyard'));
    deployment['spec'].replicas = 'three';
    deployment['spec'].template.spec.containers[0].resources.limits.memory = '512 MB';
    await assert.rejects(validateAgainstSchema(deployment), /replicas must be integer[\s\S]*memory/);
    const monitor = structuredClone(find(RENDERED.production, 'ServiceMonitor', 'switchyard'));
    monitor['spec'].endpoints[0].interval = 'every 15 seconds';
    await assert.rejects(validateAgainstSchema(monitor), /interval/);
  });

  it('the renderer merges lists on their Kubernetes merge keys and refuses what it does not implement', () => {
    assert.deepEqual(
      strategicMerge(
        { containers: [{ name: 'a', image: 'x', env: [{ name: 'A', value: '1' }] }], args: ['x'] },
        { containers: [{ name: 'a', env: [{ name: 'B', value: '2' }] }], args: ['y'] },
      ),
      {
        containers: [
          {
            name: 'a',
            image: 'x',
            env: [
              { name: 'A', value: '1' },
              { name: 'B', value: '2' },
            ],
          },
        ],
        args: ['y'],
      },
    );
    assert.throws(() => strategicMerge({}, { $retainKeys: ['a'] }), /unsupported patch directive/);
    const dir = tempDir();
    writeFileSync(join(dir, 'kustomization.yaml'), 'namePrefix: x-\nresources: []\n');
    assert.throws(() => renderKustomization(dir), /namePrefix is not supported/);
  });
});

/** The gateway config in the rendered ConfigMap, through the gateway's own loader. */
function gatewayConfig(resources: Manifest[]) {
  const configMap = find(resources, 'ConfigMap', 'switchyard-config');
  const file = join(tempDir(), 'switchyard.yaml');
  writeFileSync(file, configMap['data']['switchyard.yaml']);
  return loadConfig({
    path: file,
    env: { DATABASE_URL: 'postgres://u:p@postgres:5432/switchyard', REDIS_URL: 'redis://redis:6379' },
  }).config;
}
