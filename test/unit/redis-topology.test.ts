/**
 * `storage.redis_sentinel` / `storage.redis_cluster`: validated as the
 * alternatives to `redis_url` they are, turned into a connection target, and
 * on a cluster the names used together share a hash tag (one slot).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, validateConfig } from '../../src/config/load.ts';
import { describeRedisTarget } from '../../src/store/redis.ts';
import { RedisKeys } from '../../src/store/redis-keys.ts';
import { parseHostPort, redisKeysOf, redisTargetOf } from '../../src/store/redis-topology.ts';

const base = {
  providers: { mock: { type: 'mock' } },
  models: { mock: { targets: [{ provider: 'mock', model: 'mock-1' }] } },
};

function config(raw: Record<string, unknown>) {
  return validateConfig({ ...base, ...raw });
}

function problems(raw: Record<string, unknown>): string[] {
  try {
    config(raw);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

/** What Redis Cluster hashes: the text between the first `{` and the next `}`, if not empty; else the whole name. */
function hashTag(name: string): string {
  const open = name.indexOf('{');
  const close = open < 0 ? -1 : name.indexOf('}', open + 1);
  return close > open + 1 ? name.slice(open + 1, close) : name;
}

describe('storage.redis_sentinel and storage.redis_cluster', () => {
  const sentinel = { name: 'mymaster', sentinels: ['127.0.0.1:26379', '[::1]:26380'] };
  const cluster = { nodes: ['127.0.0.1:7000', 'redis-a.internal:7001'] };

  test('each is accepted alone and becomes the connection target', () => {
    const viaSentinel = config({
      storage: { redis_sentinel: { ...sentinel, password: 'pw-0123456789' } },
    });
    assert.deepEqual(redisTargetOf(viaSentinel.storage), {
      sentinel: { ...sentinel, password: 'pw-0123456789' },
    });
    assert.equal(redisKeysOf(viaSentinel.storage).cluster, false);
    const viaCluster = config({ storage: { redis_cluster: cluster } });
    assert.deepEqual(redisTargetOf(viaCluster.storage), { cluster });
    assert.equal(redisKeysOf(viaCluster.storage).cluster, true);
    assert.equal(redisTargetOf(config({}).storage), undefined);
  });

  test('two at once is refused, naming both', () => {
    assert.deepEqual(problems({ storage: { redis_url: 'redis://127.0.0.1:6379', redis_cluster: cluster } }), [
      'storage: redis_url and redis_cluster are alternatives; set one (REDIS_URL in the environment sets redis_url)',
    ]);
  });

  test('addresses must be host:port, lists must not be empty, fields are known', () => {
    const found = problems({
      storage: { redis_sentinel: { name: 'm', sentinels: ['127.0.0.1'] }, redis_cluster: { nodes: [] } },
    }).join('\n');
    assert.match(found, /redis_sentinel\.sentinels\.0: expected host:port/);
    assert.match(found, /redis_cluster\.nodes: expected at least one node/);
    assert.match(
      problems({ storage: { redis_cluster: { nodes: ['h:70000'] } } }).join('\n'),
      /port above 65535/,
    );
    assert.match(
      problems({ storage: { redis_sentinel: { ...sentinel, master: 'x' } } }).join('\n'),
      /redis_sentinel.*master/,
    );
  });

  test('jobs.backend: redis is satisfied by a Sentinel or a Cluster too', () => {
    assert.deepEqual(problems({ storage: { redis_cluster: cluster }, jobs: { backend: 'redis' } }), []);
    assert.match(problems({ jobs: { backend: 'redis' } }).join('\n'), /redis_sentinel or redis_cluster/);
  });

  test('host:port parsing, IPv6 in brackets', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:26379'), { host: '127.0.0.1', port: 26379 });
    assert.deepEqual(parseHostPort('[::1]:7000'), { host: '::1', port: 7000 });
    assert.throws(() => parseHostPort('localhost'), /expected host:port/);
    assert.throws(() => parseHostPort('h:0'), /expected host:port/);
  });

  test('descriptions name the topology and never a password', () => {
    const text = describeRedisTarget({
      sentinel: { ...sentinel, password: 'pw-secret-1', sentinel_password: 'pw-2' },
    });
    assert.equal(text, 'sentinel mymaster via 127.0.0.1:26379,[::1]:26380');
    assert.equal(
      describeRedisTarget({ cluster: { ...cluster, password: 'pw-3' } }),
      'cluster via 127.0.0.1:7000,redis-a.internal:7001',
    );
    assert.equal(describeRedisTarget('redis://:pw-4@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
  });
});

describe('RedisKeys on a cluster', () => {
  const plain = new RedisKeys('acme:');
  const tagged = new RedisKeys('acme:', { cluster: true });

  test('a single server keeps the names earlier versions used', () => {
    assert.equal(plain.budgetWindow('key:k1', 'day:2026-12-01'), 'acme:budget:key:k1:day:2026-12-01');
    assert.equal(plain.bullmqPrefix, 'acme:jobs');
    assert.equal(plain.jobIndex, 'acme:job-index');
    assert.equal(plain.jobsCancelled('fast'), 'acme:jobs-cancelled:fast');
  });

  test("a budget subject's windows share one slot; subjects spread", () => {
    const windows = ['day:2026-12-01', 'month:2026-12', 'total'].map((w) => tagged.budgetWindow('key:k1', w));
    assert.deepEqual(new Set(windows.map(hashTag)), new Set(['key:k1']));
    assert.notEqual(hashTag(tagged.budgetWindow('key:k2', 'total')), 'key:k1');
  });

  test("every job queue key (BullMQ's, the index, the cancelled sets) shares one slot, under the prefix", () => {
    const names = [
      `${tagged.bullmqPrefix}:fast:wait`,
      `${tagged.bullmqPrefix}:fast:job-1`,
      tagged.jobIndex,
      tagged.jobsCancelled('fast'),
      tagged.jobsCancelled('heavy'),
    ];
    assert.deepEqual(new Set(names.map(hashTag)), new Set(['jobs']));
    for (const name of names) assert.ok(name.startsWith('acme:'), name);
  });

  test('the other names are as on a single server (one key each: any slot will do)', () => {
    assert.equal(tagged.rateWindows('key:k1'), plain.rateWindows('key:k1'));
    assert.equal(tagged.breakerState('openai/gpt-4o'), plain.breakerState('openai/gpt-4o'));
    assert.equal(tagged.cacheEntry('m:s:h'), plain.cacheEntry('m:s:h'));
  });
});
