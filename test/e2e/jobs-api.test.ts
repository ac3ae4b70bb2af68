/**
 * Async jobs (`POST /v1/jobs`) and their webhooks: a queued request runs
 * through the gateway's pipeline as the key that queued it; its answer is
 * read back, or delivered signed (Standard Webhooks) to a receiver that
 * verifies the signature with its own code written from the spec; failed
 * deliveries are retried under one id; private addresses are refused.
 */
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const SECRET_BYTES = Buffer.from('a-test-webhook-signing-secret-32b');
const SECRET = `whsec_${SECRET_BYTES.toString('base64')}`;

interface Delivery {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  verified: boolean;
}

/** Standard Webhooks verification, from the spec: HMAC-SHA256 over `id.timestamp.body`, base64, `v1,` prefix. */
function verify(secret: Buffer, headers: IncomingMessage['headers'], body: string): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const expected = createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, value] = entry.split(',');
    if (version !== 'v1' || value === undefined) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A receiver answering each delivery with the next status in `statuses` (then 200). */
async function receiver(statuses: number[]): Promise<{
  url: string;
  deliveries: Delivery[];
  next: () => Promise<Delivery>;
  close: () => Promise<void>;
}> {
  const deliveries: Delivery[] = [];
  const waiting: Array<(d: Delivery) => void> = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      const delivery: Delivery = {
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        body,
        verified: verify(SECRET_BYTES, req.headers, body),
      };
      deliveries.push(delivery);
      res.statusCode = statuses.shift() ?? 200;
      res.end();
      waiting.shift()?.(delivery);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let seen = 0;
  return {
    url: `http://127.0.0.1:${port}/hooks/switchyard`,
    deliveries,
    next: () => {
      const index = seen++;
      if (deliveries[index] !== undefined) return Promise.resolve(deliveries[index]);
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field in assertions
type Json = any;

async function api(gw: TestGateway, key: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

async function waitForJob(
  gw: TestGateway,
  key: string,
  id: string,
  done = (j: Json) => ['completed', 'failed', 'cancelled'].includes(j.status),
) {
  for (let i = 0; i < 600; i++) {
    const { body } = await api(gw, key, 'GET', `/v1/jobs/${id}`);
    if (done(body)) return body;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} did not finish`);
}

describe('async jobs', () => {
  let gw: TestGateway;
  let key: string;
  before(async () => {
    gw = await startTestGateway({
      config: {
        webhooks: { secret: SECRET, allowlist: ['127.0.0.1'], retry_schedule_s: [1, 1] },
      },
    });
    const res = await api(gw, gw.masterKey, 'POST', '/admin/keys', { name: 'jobs' });
    key = res.body.key;
  });
  after(() => gw?.close());

  test('a queued chat request runs as its key and its answer is read back', async () => {
    const created = await api(gw, key, 'POST', '/v1/jobs', {
      endpoint: '/v1/chat/completions',
      request: { model: 'mock', messages: [{ role: 'user', content: 'async hello' }] },
    });
    assert.equal(created.status, 202);
    assert.match(created.body.id, /^job_[a-f0-9]{24}$/);
    assert.equal(created.body.status, 'queued');
    const job = await waitForJob(gw, key, created.body.id);
    assert.equal(job.status, 'completed');
    assert.equal(job.result.status_code, 200);
    assert.equal(job.result.body.choices[0].message.content, 'Mock reply to: async hello');
    // Billed to the key, once, under the job's id.
    await gw.gateway.context.ledger.flush();
    const rows = await gw.gateway.context.database.db
      .selectFrom('usage_ledger')
      .selectAll()
      .where('request_id', '=', created.body.id)
      .execute();
    assert.equal(rows.length, 1);
    assert.equal(
      rows[0]!.key_id,
      (await api(gw, gw.masterKey, 'GET', '/admin/keys')).body.data.find((k: Json) => k.name === 'jobs').id,
    );
  });

  test('an embeddings job; a job the gateway refuses ends failed with its error', async () => {
    const emb = await api(gw, key, 'POST', '/v1/jobs', {
      endpoint: '/v1/embeddings',
      request: { model: 'mock', input: 'vector me' },
    });
    const done = await waitForJob(gw, key, emb.body.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.queue, 'embeddings');
    assert.equal(done.result.body.object, 'list');
    const bad = await api(gw, key, 'POST', '/v1/jobs', {
      request: { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] },
    });
    const failed = await waitForJob(gw, key, bad.body.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.result.status_code, 404);
  });

  test('bad job requests are refused with 400; another key gets 404', async () => {
    assert.equal((await api(gw, key, 'POST', '/v1/jobs', { request: { messages: [] } })).status, 400);
    assert.equal(
      (await api(gw, key, 'POST', '/v1/jobs', { endpoint: '/v1/files', request: { model: 'mock' } })).status,
      400,
    );
    assert.equal(
      (await api(gw, key, 'POST', '/v1/jobs', { request: { model: 'mock', stream: true, messages: [] } }))
        .status,
      400,
    );
    const created = await api(gw, key, 'POST', '/v1/jobs', {
      request: { model: 'mock', messages: [{ role: 'user', content: 'x' }] },
    });
    const other = (await api(gw, gw.masterKey, 'POST', '/admin/keys', { name: 'other' })).body.key;
    assert.equal((await api(gw, other, 'GET', `/v1/jobs/${created.body.id}`)).status, 404);
    assert.equal((await api(gw, other, 'POST', `/v1/jobs/${created.body.id}/cancel`)).status, 404);
    assert.equal((await api(gw, key, 'GET', '/v1/jobs/job_000000000000000000000000')).status, 404);
  });

  test('the answer is delivered signed; a receiver failing twice gets the third delivery, same webhook-id', async () => {
    const hook = await receiver([500, 500]);
    try {
      const created = await api(gw, key, 'POST', '/v1/jobs', {
        request: { model: 'mock', messages: [{ role: 'user', content: 'hook me' }] },
        webhook_url: hook.url,
      });
      assert.equal(created.status, 202);
      const first = await hook.next();
      const second = await hook.next();
      const third = await hook.next();
      for (const d of [first, second, third]) assert.ok(d.verified, 'signature verifies');
      assert.equal(second.id, first.id);
      assert.equal(third.id, first.id);
      const event = JSON.parse(third.body);
      assert.equal(event.type, 'job.completed');
      assert.equal(event.data.id, created.body.id);
      assert.equal(event.data.result.body.choices[0].message.content, 'Mock reply to: hook me');
      const job = await waitForJob(gw, key, created.body.id, (j) => j.webhook?.status === 'delivered');
      assert.deepEqual(
        job.webhook.attempts.map((a: Json) => [a.ok, a.status]),
        [
          [false, 500],
          [false, 500],
          [true, 200],
        ],
      );
      assert.equal(hook.deliveries.length, 3);
      // The queues' metrics moved: jobs ended by outcome, the deliveries by result.
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      assert.match(metrics, /switchyard_jobs_total\{queue="fast",outcome="completed"\} [1-9]/);
      assert.match(metrics, /switchyard_jobs_total\{queue="fast",outcome="retried"\} 2/);
      assert.match(metrics, /switchyard_webhook_deliveries_total\{result="failed"\} 2/);
      assert.match(metrics, /switchyard_webhook_deliveries_total\{result="delivered"\} 1/);
      assert.match(metrics, /switchyard_queue_depth\{queue="fast",status="queued"\} 0/);
      assert.match(
        metrics,
        /switchyard_job_duration_seconds_count\{queue="fast",outcome="completed"\} [1-9]/,
      );
    } finally {
      await hook.close();
    }
  });

  test('a webhook to a private or loopback address is refused unless allowed', async () => {
    for (const url of [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest/meta-data',
      'http://[::1]:9/x',
      'http://localhost:9/x',
    ]) {
      const res = await api(gw, key, 'POST', '/v1/jobs', {
        request: { model: 'mock', messages: [] },
        webhook_url: url,
      });
      assert.equal(res.status, 400, url);
      assert.equal(res.body.error.param, 'webhook_url');
    }
  });
});

describe('async jobs without webhooks configured', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway();
  });
  after(() => gw?.close());

  test('a webhook_url is refused: there is no secret to sign with', async () => {
    const res = await api(gw, gw.masterKey, 'POST', '/v1/jobs', {
      request: { model: 'mock', messages: [{ role: 'user', content: 'x' }] },
      webhook_url: 'https://example.com/hook',
    });
    assert.equal(res.status, 400);
    assert.match(res.body.error.message, /webhooks/i);
  });
});
