/**
 * `switchyard start --workers N`: refused without Redis (per-process limits
 * would multiply by N); a first start generates the master key once, in the
 * primary, and every worker accepts it; a worker killed with SIGKILL is
 * replaced, and the only requests lost are those that were in flight when it
 * died; SIGTERM to the primary drains every worker (streams finish) and
 * exits 0.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { eventually } from '../conformance/harness.ts';
import { runCli, type SpawnedGateway, spawnGateway, tempDir } from '../helpers/gateway.ts';
import { testRedisUrl } from '../helpers/services.ts';

function sharedRedis(): Record<string, unknown> {
  // A prefix of its own: other test files share the runner's Redis.
  return { redis_url: testRedisUrl(), redis_prefix: `httpworkers${randomBytes(4).toString('hex')}:` };
}

/** The workers' pids as the banner lists them. */
function bannerPids(gw: SpawnedGateway): number[] {
  const match = /HTTP worker processes on one port \(node:cluster, round robin; pids ([\d, ]+)\)/.exec(
    gw.stderr(),
  );
  assert.ok(match, gw.stderr());
  return match[1]!.split(', ').map(Number);
}

function chatBody(content = 'ping'): string {
  return JSON.stringify({ model: 'mock', messages: [{ role: 'user', content }] });
}

describe('switchyard start --workers', () => {
  test('more than one worker without Redis is refused, saying why and what to do', async () => {
    const { code, stderr } = await runCli(['start', '--workers', '2'], { env: { PORT: '0' } });
    assert.equal(code, 2);
    assert.match(stderr, /--workers 2 starts 2 HTTP worker processes, and they need Redis to share state/);
    assert.match(stderr, /a limit of 100 a minute would admit 200/);
    assert.match(stderr, /Set storage\.redis_url \(or REDIS_URL\), or run one process \(--workers 1\)/);
    assert.doesNotMatch(stderr, /listening on/);
  });

  test('--workers takes a count from 1 to 256 or auto, and belongs to start only', async () => {
    for (const bad of ['0', '-1', '2.5', 'two', '257']) {
      const { code, stderr } = await runCli(['start', `--workers=${bad}`], { env: { PORT: '0' } });
      assert.equal(code, 2, bad);
      assert.match(stderr, /--workers takes a whole number from 1 to 256, or auto/);
    }
    const jobWorker = await runCli(['worker', '--workers', '2']);
    assert.equal(jobWorker.code, 2);
    assert.match(jobWorker.stderr, /--workers is an option of start \(HTTP worker processes\)/);
  });

  test('a first start generates the master key once, in the primary; both workers accept it', async () => {
    const dataDir = tempDir();
    const gw = await spawnGateway({
      args: ['--workers', '2'],
      dataDir,
      config: { storage: sharedRedis() },
      // No configured master key: the data dir has none yet either.
      env: { SWITCHYARD_MASTER_KEY: '' },
    });
    try {
      const key = readFileSync(join(dataDir, 'master.key'), 'utf8').trim();
      const shown = gw.stderr().match(/master key \(shown once; stored in [^)]+\): (\S+)/g) ?? [];
      assert.equal(shown.length, 1, gw.stderr());
      assert.ok(shown[0]!.endsWith(key));
      // Ten connections of their own: the primary hands them to the two workers in turn.
      const dispatcher = new Agent({ connections: 10 });
      const statuses = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const res = await request(`${gw.baseUrl}/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: chatBody(),
            dispatcher,
          });
          await res.body.arrayBuffer();
          return res.statusCode;
        }),
      );
      await dispatcher.close();
      assert.deepEqual(statuses, Array(10).fill(200));
    } finally {
      gw.kill('SIGTERM');
      assert.equal(await gw.exited, 0, `${gw.stderr()}\n${readFileSync(gw.stdoutFile, 'utf8').slice(-3000)}`);
    }
  });

  test('a worker killed with SIGKILL is replaced; only requests in flight on it fail', async (t) => {
    const gw = await spawnGateway({
      args: ['--workers', '2'],
      config: {
        storage: sharedRedis(),
        // Requests take a while, so some are in flight on the worker when it dies.
        providers: { mock: { type: 'mock', latency_ms: 30 } },
      },
    });
    const clients = 16;
    // A connection the primary was handing to the worker as it died is held open by the
    // primary (node:cluster never learns the hand-off failed): the client's own timeout
    // ends that request, one of those in flight at the death.
    const dispatcher = new Agent({ connections: clients, headersTimeout: 10_000, bodyTimeout: 10_000 });
    type Outcome = { startedAt: number; ok: boolean };
    const outcomes: Outcome[] = [];
    let running = true;
    let answered = 0;
    const load = Promise.all(
      Array.from({ length: clients }, async () => {
        while (running) {
          const startedAt = performance.now();
          try {
            const res = await request(`${gw.baseUrl}/chat/completions`, {
              method: 'POST',
              headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
              body: chatBody(),
              dispatcher,
            });
            await res.body.arrayBuffer();
            outcomes.push({ startedAt, ok: res.statusCode === 200 });
            if (res.statusCode === 200) answered++;
          } catch {
            outcomes.push({ startedAt, ok: false });
          }
        }
      }),
    );
    try {
      const [victim, survivor] = bannerPids(gw);
      await eventually('load under way', () => answered >= 100, { timeoutMs: 20_000 });
      process.kill(victim!, 'SIGKILL');
      await eventually(
        'the primary noticed the death',
        () => gw.stderr().includes(`(pid ${victim}) died (signal SIGKILL); replacing it`),
        { timeoutMs: 10_000 },
      );
      const noticedAt = performance.now();
      await eventually(
        'a replacement listens',
        () => /HTTP worker \d replaced: pid \d+ listening/.test(gw.stderr()),
        {
          timeoutMs: 20_000,
        },
      );
      const replacement = Number(/HTTP worker \d replaced: pid (\d+) listening/.exec(gw.stderr())![1]);
      assert.notEqual(replacement, victim);
      assert.notEqual(replacement, survivor);
      const before = answered;
      await eventually('load goes on after the replacement', () => answered >= before + 200, {
        timeoutMs: 20_000,
      });
      running = false;
      await load;
      const failed = outcomes.filter((o) => !o.ok);
      t.diagnostic(`${outcomes.length} requests, ${failed.length} failed (in flight on the killed worker)`);
      // At most one request per client was in flight at any moment: only those could be lost...
      assert.ok(failed.length <= clients, `${failed.length} failed`);
      // ...and none that started once the primary knew the worker was gone.
      assert.deepEqual(
        failed.filter((o) => o.startedAt > noticedAt),
        [],
      );
      assert.ok(outcomes.length - failed.length >= 300);
    } finally {
      running = false;
      await load;
      await dispatcher.close();
      gw.kill('SIGTERM');
    }
    assert.equal(await gw.exited, 0);
  });

  test('SIGTERM to the primary drains every worker: streams in flight finish, exit 0', async () => {
    const words = Array.from({ length: 20 }, (_, i) => `w${i}`).join(' ');
    const gw = await spawnGateway({
      args: ['--workers', '2'],
      config: {
        storage: sharedRedis(),
        providers: { mock: { type: 'mock', reply: words, stream_delay_ms: 25 } },
      },
    });
    const dispatcher = new Agent({ connections: 6 });
    const streams = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const res = await request(`${gw.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${gw.masterKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock', stream: true, messages: [{ role: 'user', content: 'go' }] }),
          dispatcher,
        });
        assert.equal(res.statusCode, 200);
        const reader = res.body[Symbol.asyncIterator]();
        // The first chunk is here: the stream is in flight.
        const first = await reader.next();
        return { first: String(first.value), rest: reader };
      }),
    );
    gw.kill('SIGTERM');
    const texts = await Promise.all(
      streams.map(async ({ first, rest }) => {
        let body = first;
        for (let chunk = await rest.next(); !chunk.done; chunk = await rest.next())
          body += String(chunk.value);
        return body;
      }),
    );
    await dispatcher.close();
    for (const body of texts) {
      assert.ok(body.trimEnd().endsWith('data: [DONE]'), body.slice(-200));
      const text = body
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map(
          (l) =>
            (JSON.parse(l.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta
              .content ?? '',
        )
        .join('');
      assert.equal(text, words);
    }
    assert.equal(await gw.exited, 0);
    assert.match(readFileSync(gw.stdoutFile, 'utf8'), /"clean":true,"msg":"stopped"/);
  });
});
