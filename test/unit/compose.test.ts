/**
 * deploy/compose.yaml and the files it mounts, checked without a Docker engine:
 * the services and their start order (depends_on conditions on health checks),
 * no secret written in any file (only required `${VAR:?…}` from deploy/.env),
 * every mounted file present, and the mounted configs valid for what reads them
 * (the gateway's own config loader, Prometheus' rule and scrape files, Grafana's
 * provisioning pointing at the dashboard).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/load.ts';
import { ROOT } from '../helpers/gateway.ts';

const DEPLOY = join(ROOT, 'deploy');
const TEXT = readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8');

interface Service {
  image: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; interval: string; retries: number };
  read_only?: boolean;
  user?: string;
  stop_grace_period?: string;
}

// `merge: true`: the gateways share one `<<: *gateway` block.
const COMPOSE = parse(TEXT, { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const SERVICES = COMPOSE.services;
const GATEWAYS = ['gateway-1', 'gateway-2'];

/** A bind mount's host path (relative to deploy/) and container path; undefined for named volumes. */
function binds(service: Service): { host: string; container: string }[] {
  return (service.volumes ?? [])
    .filter((v) => v.startsWith('.'))
    .map((v) => {
      const [host, container] = v.split(':');
      return { host: join(DEPLOY, host!), container: container! };
    });
}

const readYaml = (path: string) => parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

describe('deploy/compose.yaml', () => {
  it('runs two gateways, a one-shot migration, Redis, PostgreSQL, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(SERVICES).sort(), [
      'gateway-1',
      'gateway-2',
      'grafana',
      'migrate',
      'postgres',
      'prometheus',
      'redis',
    ]);
    for (const [name, service] of Object.entries(SERVICES)) {
      assert.match(service.image, /^[\w./-]+:[\w.${}:-]+$/, `${name}: an explicit tag`);
      assert.doesNotMatch(service.image, /:latest$/, name);
    }
    assert.deepEqual(SERVICES['migrate']!.command, ['migrate']);
  });

  it('gives every long-running service a health check, and starts each after what it needs is healthy', () => {
    for (const [name, service] of Object.entries(SERVICES)) {
      if (name === 'migrate') continue;
      assert.equal(service.healthcheck?.test[0], 'CMD', `${name} has an exec-form health check`);
      assert.ok(service.healthcheck.retries > 0);
    }
    for (const name of GATEWAYS) {
      const gateway = SERVICES[name]!;
      assert.deepEqual(gateway.depends_on, {
        redis: { condition: 'service_healthy' },
        postgres: { condition: 'service_healthy' },
        migrate: { condition: 'service_completed_successfully' },
      });
      assert.match(gateway.healthcheck!.test.join(' '), /\/health\/ready/);
      assert.equal(
        gateway.environment!['SWITCHYARD_MIGRATE'],
        'false',
        'gateways never migrate: the job does',
      );
      assert.equal(gateway.read_only, true);
      assert.equal(gateway.user, '1000:1000');
      assert.equal(gateway.stop_grace_period, '35s', 'longer than the 30 s drain');
    }
    assert.deepEqual(SERVICES['migrate']!.depends_on, { postgres: { condition: 'service_healthy' } });
    assert.deepEqual(SERVICES['prometheus']!.depends_on, {
      'gateway-1': { condition: 'service_healthy' },
      'gateway-2': { condition: 'service_healthy' },
    });
    assert.deepEqual(SERVICES['grafana']!.depends_on, { prometheus: { condition: 'service_healthy' } });
  });

  it('writes no secret: each comes from deploy/.env, and `up` stops with a message when one is missing', () => {
    const required = new Set<string>();
    for (const [name, service] of Object.entries(SERVICES)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (!/KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL/.test(variable)) continue;
        // The value is an interpolation, or a URL whose password is one.
        const literal = value.replace(/\$\{[^}]+\}/g, '');
        assert.doesNotMatch(literal, /:[^/@:]+@/, `${name}.${variable} has no literal password`);
        assert.ok(value.includes('${'), `${name}.${variable} comes from the environment`);
        for (const match of value.matchAll(/\$\{(\w+):\?[^}]+\}/g)) required.add(match[1]!);
      }
    }
    assert.deepEqual([...required].sort(), [
      'GRAFANA_ADMIN_PASSWORD',
      'POSTGRES_PASSWORD',
      'SWITCHYARD_MASTER_KEY',
    ]);
    const example = readFileSync(join(DEPLOY, '.env.example'), 'utf8');
    for (const variable of required)
      assert.match(example, new RegExp(`^${variable}=$`, 'm'), `${variable} in .env.example, empty`);
    assert.doesNotMatch(TEXT, /sk-[A-Za-z0-9]{8,}/);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8');
    assert.match(ignore, /^\.env$/m, 'deploy/.env never reaches an image');
  });

  it('mounts files that exist, keeps state in declared volumes and publishes on loopback only', () => {
    for (const service of Object.values(SERVICES)) {
      for (const bind of binds(service)) assert.ok(existsSync(bind.host), bind.host);
      for (const volume of service.volumes ?? []) {
        if (volume.startsWith('.')) continue;
        assert.ok(volume.split(':')[0]! in COMPOSE.volumes, `${volume} is declared`);
      }
      for (const port of service.ports ?? []) assert.match(port, /^127\.0\.0\.1:\d+:\d+$/);
    }
    for (const name of GATEWAYS) {
      assert.ok(SERVICES[name]!.volumes!.includes(`${name}-data:/var/lib/switchyard`));
    }
  });

  it("mounts a gateway config the gateway's own loader accepts, with the compose environment", () => {
    const gateway = SERVICES['gateway-1']!;
    const configMount = binds(gateway).find(
      (b) => b.container === gateway.environment!['SWITCHYARD_CONFIG'],
    )!;
    const env = {
      DATABASE_URL: 'postgres://switchyard:pw@postgres:5432/switchyard',
      REDIS_URL: gateway.environment!['REDIS_URL']!,
      SWITCHYARD_MIGRATE: 'false',
      SWITCHYARD_MASTER_KEY: 'sk-sy-master-compose-test-0123456789',
    };
    const { config } = loadConfig({ path: configMount.host, env });
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.server.port, 8080);
    assert.equal(config.storage.migrate, false);
    assert.equal(config.storage.redis_url, 'redis://redis:6379');
    assert.equal(config.data_dir, '/var/lib/switchyard');
    assert.ok(config.server.shutdown.grace_ms < 35_000);
  });

  it('points Prometheus at both gateways and at the alert rules, and Grafana at Prometheus and the dashboard', () => {
    const prometheus = SERVICES['prometheus']!;
    const mounts = binds(prometheus);
    const scrape = readYaml(mounts.find((m) => m.container === '/etc/prometheus/prometheus.yml')!.host) as {
      rule_files: string[];
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    assert.deepEqual(scrape.scrape_configs[0]!.static_configs[0]!.targets, [
      'gateway-1:8080',
      'gateway-2:8080',
    ]);
    assert.equal(scrape.scrape_configs[0]!.metrics_path, '/metrics');
    const rules = mounts.find((m) => m.container === scrape.rule_files[0]);
    assert.equal(rules?.host, join(DEPLOY, 'prometheus', 'alerts.yml'));
    const alertGroups = readYaml(rules.host)['groups'] as { rules: { alert: string; expr: string }[] }[];
    assert.ok(alertGroups.flatMap((g) => g.rules).length > 3);

    const grafana = SERVICES['grafana']!;
    const gmounts = binds(grafana);
    const dashboard = gmounts.find((m) => m.host === join(DEPLOY, 'grafana', 'switchyard.json'))!;
    const providers = readYaml(gmounts.find((m) => m.container.includes('provisioning/dashboards'))!.host)[
      'providers'
    ] as { type: string; options: { path: string } }[];
    assert.equal(providers[0]!.options.path, posix.dirname(dashboard.container));
    assert.equal(grafana.environment!['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'], dashboard.container);
    const datasources = readYaml(gmounts.find((m) => m.container.includes('provisioning/datasources'))!.host)[
      'datasources'
    ] as { type: string; url: string; isDefault: boolean }[];
    assert.deepEqual(
      { type: datasources[0]!.type, url: datasources[0]!.url, isDefault: datasources[0]!.isDefault },
      { type: 'prometheus', url: 'http://prometheus:9090', isDefault: true },
    );
    const json = JSON.parse(readFileSync(dashboard.host, 'utf8')) as {
      templating: { list: { name: string; type: string; query: string }[] };
    };
    // The dashboard picks its data source by type: the provisioned default one.
    assert.ok(json.templating.list.some((v) => v.type === 'datasource' && v.query === 'prometheus'));
    assert.ok(existsSync(dirname(dashboard.host)));
  });
});
