/**
 * The `switchyard` command as a user runs it: check-config, keys
 * create/list/revoke against a data dir (and the created key working on a
 * gateway over the same data dir), usage errors, and the quick start with no
 * config and no master key.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  pollUntil,
  runSwitchyard,
  type StartedProcess,
  startSwitchyard,
  waitReady,
} from '../fixtures/ops/proc.ts';
import {
  newMasterKey,
  registerSecret,
  type SpawnedGateway,
  spawnGateway,
  tempDir,
  writeConfig,
} from '../helpers/gateway.ts';
import { testRedisUrl } from '../helpers/services.ts';

const MOCK_CONFIG = {
  providers: { mock: { type: 'mock' } },
  models: {
    mock: { targets: [{ provider: 'mock', model: 'mock-1' }] },
    other: { targets: [{ provider: 'mock', model: 'mock-2' }] },
  },
};

async function chat(
  baseUrl: string,
  key: string,
  model = 'mock',
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi there' }] }),
  });
  return { status: res.status, body: await res.json() };
}

describe('switchyard check-config', () => {
  test('a valid file: exit 0 and a summary', async () => {
    const file = writeConfig(MOCK_CONFIG);
    const result = await runSwitchyard(['check-config', '--config', file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /config OK/);
    assert.match(result.stderr, /1 providers, 2 models/);
  });

  test('SWITCHYARD_CONFIG names the file when --config is absent', async () => {
    const file = writeConfig(MOCK_CONFIG);
    const result = await runSwitchyard(['check-config'], { env: { SWITCHYARD_CONFIG: file } });
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stderr.includes(file), result.stderr);
  });

  test('no config anywhere: OK on built-in defaults', async () => {
    const result = await runSwitchyard(['check-config']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /built-in defaults/);
  });
});

describe('usage errors', () => {
  for (const args of [['frobnicate'], [], ['keys'], ['keys', 'explode'], ['start', '--bogus']]) {
    test(`switchyard ${args.join(' ') || '(no command)'}: exit 2 with usage`, async () => {
      const result = await runSwitchyard(args);
      assert.equal(result.startedServing, false);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, /^Usage:\n {2}switchyard start/m);
      assert.doesNotMatch(result.stderr, /^\s+at /m, 'no stack trace');
      if (args[0] === 'frobnicate') assert.match(result.stderr, /^unknown command: frobnicate$/m);
    });
  }

  test('--help: exit 0 with usage', async () => {
    const result = await runSwitchyard(['--help']);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /^Usage:/);
  });

  test('keys create without --name: exit 2', async () => {
    const dataDir = tempDir();
    const file = writeConfig({ ...MOCK_CONFIG, data_dir: dataDir });
    const result = await runSwitchyard(['keys', 'create', '--config', file], {
      env: { SWITCHYARD_MASTER_KEY: newMasterKey() },
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /keys create needs --name/);
  });
});

describe('switchyard keys against a data dir', () => {
  const dataDir = tempDir('switchyard-keys-');
  const masterKey = newMasterKey();
  const configFile = writeConfig({ ...MOCK_CONFIG, data_dir: dataDir });
  const env = { SWITCHYARD_MASTER_KEY: masterKey };
  let gateway: SpawnedGateway | undefined;
  let created: { id: string; key: string; name: string; allowed_models: string[] | null } | undefined;

  after(async () => {
    if (gateway) {
      gateway.kill('SIGTERM');
      await gateway.exited;
    }
  });

  test('keys create prints the key once, as JSON on stdout', async () => {
    // Not copied into the log dir: printing the secret here is the point.
    const result = await runSwitchyard(
      ['keys', 'create', '--name', 'ci', '--models', 'mock', '--config', configFile],
      {
        env,
        log: false,
      },
    );
    assert.equal(result.code, 0, result.stderr);
    created = JSON.parse(result.stdout) as typeof created;
    assert.ok(created);
    registerSecret(created.key);
    assert.match(created.id, /^key_[a-f0-9]{24}$/);
    assert.match(created.key, /^sk-sy-[A-Za-z0-9_-]{40,}$/);
    assert.equal(created.name, 'ci');
    assert.deepEqual(created.allowed_models, ['mock']);
    assert.match(result.stderr, /shown once/);
    assert.ok(!result.stderr.includes(created.key), 'the key is on stdout only');
    assert.ok(existsSync(join(dataDir, 'switchyard.db')), 'stored in the data dir');
  });

  test('keys list shows the key without its secret or hash', async () => {
    assert.ok(created);
    const result = await runSwitchyard(['keys', 'list', '--config', configFile], { env });
    assert.equal(result.code, 0, result.stderr);
    const list = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    assert.equal(list.length, 1);
    const [entry] = list;
    assert.equal(entry?.['id'], created.id);
    assert.equal(entry?.['name'], 'ci');
    assert.equal(entry?.['revoked_at'], null);
    assert.equal(entry?.['hint'], `…${created.key.slice(-4)}`);
    const hash = createHash('sha256').update(created.key).digest('hex');
    for (const text of [result.stdout, result.stderr]) {
      assert.ok(!text.includes(created.key), 'no secret');
      assert.ok(!text.includes(hash), 'no hash');
      assert.ok(!text.includes(created.key.slice(0, 16)), 'no prefix of the secret');
    }
    assert.ok(!('key' in entry!) && !('key_hash' in entry!) && !('keyHash' in entry!));
  });

  test('the created key works on a gateway over the same data dir, for its models only', async () => {
    assert.ok(created);
    gateway = await spawnGateway({
      dataDir,
      masterKey,
      config: MOCK_CONFIG,
      env: { REDIS_URL: testRedisUrl() },
    });
    await waitReady(gateway.url);
    const ok = await chat(gateway.url, created.key);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const completion = ok.body as OpenAI.ChatCompletion;
    assert.equal(completion.choices[0]?.message.content, 'Mock reply to: hi there');
    const denied = await chat(gateway.url, created.key, 'other');
    assert.equal(denied.status, 403, JSON.stringify(denied.body));
    const listed = await fetch(`${gateway.baseUrl}/models`, {
      headers: { authorization: `Bearer ${created.key}` },
    });
    const models = (await listed.json()) as { data: Array<{ id: string }> };
    assert.deepEqual(
      models.data.map((m) => m.id),
      ['mock'],
    );
  });

  test('keys revoke: the running gateway (sharing Redis) refuses the key within a second', async () => {
    assert.ok(created && gateway);
    const result = await runSwitchyard(['keys', 'revoke', created.id, '--config', configFile], {
      env: { ...env, REDIS_URL: testRedisUrl() },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`revoked ${created.id}`));
    const gw = gateway;
    const key = created.key;
    // 20 × 50 ms: a revocation must reach a running instance in about a second.
    await pollUntil('gateway refuses the revoked key', async () => (await chat(gw.url, key)).status === 401, {
      attempts: 20,
      intervalMs: 50,
    });
    const refused = await chat(gw.url, key);
    assert.equal(refused.status, 401);
    assert.equal((refused.body as { error: { type: string } }).error.type, 'authentication_error');
  });

  test('keys list shows the revocation; revoking again fails with exit 1', async () => {
    assert.ok(created);
    const list = await runSwitchyard(['keys', 'list', '--config', configFile], { env });
    assert.equal(list.code, 0, list.stderr);
    const [entry] = JSON.parse(list.stdout) as Array<{ id: string; revoked_at: string | null }>;
    assert.equal(entry?.id, created.id);
    assert.ok(entry?.revoked_at !== null && !Number.isNaN(Date.parse(entry?.revoked_at ?? '')));
    const again = await runSwitchyard(['keys', 'revoke', created.id, '--config', configFile], { env });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /no active key/);
  });

  test('a gateway started afterwards on the same data dir refuses the revoked key', async () => {
    assert.ok(created && gateway);
    gateway.kill('SIGTERM');
    assert.equal(await gateway.exited, 0);
    gateway = await spawnGateway({ dataDir, masterKey, config: MOCK_CONFIG });
    const refused = await chat(gateway.url, created.key);
    assert.equal(refused.status, 401);
    const master = await chat(gateway.url, masterKey);
    assert.equal(master.status, 200);
  });
});

describe('quick start: no config, no master key', () => {
  const cwd = tempDir('switchyard-quickstart-');
  let proc: StartedProcess | undefined;

  after(async () => {
    await proc?.stop();
  });

  test('generates a master key, prints it once, serves the mock model, stops on SIGTERM', async () => {
    // Output stays in memory: the generated key is printed on stderr by design.
    proc = await startSwitchyard({ cwd });
    const keyFile = join(cwd, 'data', 'master.key');
    assert.ok(existsSync(keyFile), 'master key stored in ./data');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'master.key is private');
    const masterKey = readFileSync(keyFile, 'utf8').trim();
    assert.match(masterKey, /^sk-sy-master-[A-Za-z0-9_-]{40,}$/);
    const stderr = proc.stderr();
    assert.equal(
      stderr.split(masterKey).length - 1,
      1,
      `printed exactly once:\n${stderr.replaceAll(masterKey, '<KEY>')}`,
    );
    assert.match(stderr, /no config file/);
    assert.match(stderr, /models: {4}mock/);
    assert.match(proc.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'loopback by default');

    await waitReady(proc.url);
    const client = new OpenAI({ baseURL: `${proc.url}/v1`, apiKey: masterKey, maxRetries: 0 });
    const completion = await client.chat.completions.create({
      model: 'mock',
      messages: [{ role: 'user', content: 'hello quick start' }],
    });
    assert.equal(completion.choices[0]?.message.content, 'Mock reply to: hello quick start');
    const stream = await client.chat.completions.create({
      model: 'mock',
      stream: true,
      messages: [{ role: 'user', content: 'stream please' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    assert.equal(text, 'Mock reply to: stream please');

    const anonymous = await fetch(`${proc.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'x' }] }),
    });
    assert.equal(anonymous.status, 401, 'no unauthenticated access');
    await anonymous.body?.cancel();

    const { code, signal } = await proc.stop();
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.ok(!proc.stdout().includes(masterKey), 'the key is not in the JSON logs');
    assert.equal(proc.stderr().split(masterKey).length - 1, 1, 'still printed only once');
    proc = undefined;

    // Second start on the same directory: the stored key is reused and not printed again.
    proc = await startSwitchyard({ cwd });
    assert.ok(!proc.stderr().includes(masterKey), 'not printed on a later start');
    assert.match(proc.stderr(), /master key: from/);
    await waitReady(proc.url);
    const again = await chat(proc.url, masterKey);
    assert.equal(again.status, 200);
    const second = await proc.stop();
    assert.equal(second.code, 0);
    proc = undefined;
  });

  test('running `keys list` first does not swallow the one-time display of the master key', async () => {
    // A user trying the CLI before the server: the first `start` must still
    // show the generated master key (the contract is "generated on first
    // start, printed once"), not find one some earlier command created silently.
    const fresh = tempDir('switchyard-quickstart-');
    const list = await runSwitchyard(['keys', 'list'], { cwd: fresh });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(JSON.parse(list.stdout), []);
    proc = await startSwitchyard({ cwd: fresh });
    const masterKey = readFileSync(join(fresh, 'data', 'master.key'), 'utf8').trim();
    const stderr = proc.stderr();
    const { code } = await proc.stop();
    proc = undefined;
    assert.equal(code, 0);
    assert.ok(
      stderr.includes(masterKey),
      `first start should print the generated key; stderr:\n${stderr.replaceAll(masterKey, '<KEY>')}`,
    );
  });
});
