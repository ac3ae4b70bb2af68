/**
 * Webhook delivery against real HTTP receivers on loopback: signatures that a
 * Standard Webhooks verifier written here from the spec accepts, retries under
 * one `webhook-id`, and the SSRF policy at work: private and loopback targets
 * refused (no connection reaches the receiver) unless allowlisted, a DNS answer
 * that turns private between two connections refused at connect time,
 * redirects not followed, a bounded wait and a bounded read.
 *
 * Loopback stands in for both sides here: an allowlisted loopback address
 * plays the public receiver, another loopback address the internal target.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { signWebhook, webhookKey } from '../../src/webhooks/signature.ts';
import {
  closeWebhookConnections,
  type DeliveryOutcome,
  deliverOnce,
  type SignedWebhook,
} from '../../src/webhooks/webhook-delivery.ts';
import { type WebhookAttempt, WebhookSender } from '../../src/webhooks/webhook-sender.ts';
import { type ResolvedAddress, WebhookPolicy } from '../../src/webhooks/webhook-url-policy.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

type Responder = (res: ServerResponse, index: number) => void;

/** An HTTP receiver that records what reaches it: connections, and requests with their bodies. */
class Receiver {
  readonly received: Received[] = [];
  connections = 0;
  readonly #waiters: Array<{ count: number; resolve: () => void }> = [];
  readonly #server: Server;
  readonly host: string;

  private constructor(server: Server, host: string) {
    this.#server = server;
    this.host = host;
  }

  static async start(
    host: string,
    respond: Responder = (res) => res.writeHead(204).end(),
  ): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, host);
    server.on('connection', () => {
      receiver.connections++;
    });
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const index =
          receiver.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() }) - 1;
        for (const waiter of receiver.#waiters.filter((w) => receiver.received.length >= w.count))
          waiter.resolve();
        respond(res, index);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    receivers.push(receiver);
    return receiver;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  url(
    host = this.host.includes(':') ? `[${this.host}]` : this.host,
    path = '/hooks?token=receiver-secret',
  ): string {
    return `http://${host}:${this.port}${path}`;
  }

  /** Resolves once `count` requests have arrived. */
  arrived(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

const receivers: Receiver[] = [];
const policies: WebhookPolicy[] = [];
after(async () => {
  await Promise.all(policies.map((p) => closeWebhookConnections(p)));
  await Promise.all(receivers.map((r) => r.close()));
});

function policy(...args: ConstructorParameters<typeof WebhookPolicy>): WebhookPolicy {
  const made = new WebhookPolicy(...args);
  policies.push(made);
  return made;
}

/** A resolver that gives each call the next answer (the last one repeats), counting calls. */
function scriptedResolver(...answers: string[][]) {
  const calls: string[] = [];
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length, answers.length) - 1] ?? [];
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { resolve, calls };
}

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

function signed(body = '{"type":"test"}', id = `msg_${randomBytes(8).toString('hex')}`): SignedWebhook {
  const timestamp = Math.floor(Date.now() / 1000);
  return { id, timestamp, body, signature: signWebhook(webhookKey(SECRET), id, timestamp, body) };
}

/**
 * Standard Webhooks verification, written from the spec
 * (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md),
 * not with our signWebhook: the key is the base64 after `whsec_`; the signed
 * content is `{webhook-id}.{webhook-timestamp}.{body}`; `webhook-signature` is
 * space-separated `v1,<base64 HMAC-SHA256>` entries, compared in constant time;
 * a timestamp more than five minutes away is refused.
 */
function verifyStandardWebhook(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.split('_')[1] ?? '', 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((entry) => {
    const [version, mac] = entry.split(',');
    if (version !== 'v1' || mac === undefined) return false;
    const given = Buffer.from(mac, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const refusedOutcome = (outcome: DeliveryOutcome, pattern: RegExp) => {
  assert.equal(outcome.ok, false);
  assert.equal(outcome.refused, true, JSON.stringify(outcome));
  assert.match(outcome.error ?? '', /^refused by the webhook policy: /);
  assert.match(outcome.error ?? '', pattern);
};

describe('a delivery, signed and retried', () => {
  test('signed per Standard Webhooks: an independent verifier accepts it, and refuses it tampered', async () => {
    const receiver = await Receiver.start('127.0.0.1');
    const sender = new WebhookSender({
      secret: SECRET,
      retryScheduleS: [],
      policy: policy({ allowlist: ['127.0.0.1'] }),
    });
    const id = await sender.send(receiver.url(), { type: 'job.completed', data: { job: 'job_1' } });
    await receiver.arrived(1);
    const [delivery] = receiver.received;
    assert.ok(delivery);
    assert.equal(delivery.headers['webhook-id'], id);
    assert.equal(delivery.headers['content-type'], 'application/json');
    assert.ok(verifyStandardWebhook(SECRET, delivery.headers, delivery.body), 'the signature verifies');
    assert.ok(
      !verifyStandardWebhook(SECRET, delivery.headers, `${delivery.body} `),
      'a changed body does not',
    );
    const otherSecret = `whsec_${randomBytes(32).toString('base64')}`;
    assert.ok(
      !verifyStandardWebhook(otherSecret, delivery.headers, delivery.body),
      'another secret does not',
    );
    const event = JSON.parse(delivery.body) as { type: string; data: unknown };
    assert.deepEqual([event.type, event.data], ['job.completed', { job: 'job_1' }]);
    sender.close();
  });

  test('a receiver answering 500 twice gets the third attempt, all three under the same webhook-id', async () => {
    const receiver = await Receiver.start('127.0.0.1', (res, index) =>
      res.writeHead(index < 2 ? 500 : 204).end(),
    );
    const sender = new WebhookSender({
      secret: SECRET,
      retryScheduleS: [0, 0],
      policy: policy({ allowlist: ['127.0.0.0/8'] }),
    });
    const attempts: WebhookAttempt[] = [];
    const last = new Promise<void>((resolve) => {
      void sender.send(
        receiver.url(),
        { type: 'job.failed', data: {} },
        {
          id: 'msg_stable-id',
          onAttempt: (attempt) => {
            attempts.push(attempt);
            if (attempt.final) resolve();
          },
        },
      );
    });
    await last;
    assert.equal(receiver.received.length, 3);
    assert.deepEqual(
      receiver.received.map((r) => r.headers['webhook-id']),
      ['msg_stable-id', 'msg_stable-id', 'msg_stable-id'],
    );
    assert.ok(receiver.received.every((r) => verifyStandardWebhook(SECRET, r.headers, r.body)));
    assert.deepEqual(
      attempts.map((a) => [a.id, a.attempt, a.ok, a.status, a.error, a.final]),
      [
        ['msg_stable-id', 1, false, 500, 'HTTP 500', false],
        ['msg_stable-id', 2, false, 500, 'HTTP 500', false],
        ['msg_stable-id', 3, true, 204, undefined, true],
      ],
    );
    assert.ok(attempts.every((a) => a.ms >= 0 && a.at > 0));
    sender.close();
  });

  test('the schedule running out makes the last failure final', async () => {
    const receiver = await Receiver.start('127.0.0.1', (res) => res.writeHead(503).end());
    const failures: Array<{ attempt: number; final: boolean; error: string }> = [];
    const done = new Promise<void>((resolve) => {
      const sender = new WebhookSender({
        secret: SECRET,
        retryScheduleS: [0],
        policy: policy({ allowlist: ['127.0.0.1'] }),
        onFailure: ({ attempt, final, error }) => {
          failures.push({ attempt, final, error });
          if (final) resolve();
        },
      });
      void sender.send(receiver.url(), { type: 'batch.completed', data: {} });
    });
    await done;
    assert.deepEqual(failures, [
      { attempt: 1, final: false, error: 'HTTP 503' },
      { attempt: 2, final: true, error: 'HTTP 503' },
    ]);
  });
});

describe('the policy at connect time', () => {
  test('loopback, private and link-local targets are refused by default; loopback receivers see no connection', async () => {
    const v4 = await Receiver.start('127.0.0.1');
    const v6 = await Receiver.start('::1');
    const strict = policy();
    const cases: Array<[string, RegExp]> = [
      [v4.url(), /127\.0\.0\.1 is a loopback address/],
      [v4.url('localhost'), /localhost is a loopback name/],
      [v4.url('2130706433'), /127\.0\.0\.1 is a loopback address/],
      [v4.url('0x7f.1'), /127\.0\.0\.1 is a loopback address/],
      [v4.url('[::ffff:7f00:1]'), /::ffff:7f00:1 is a loopback address/],
      [v6.url(), /::1 is a loopback address/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
      ['http://10.0.0.1/hooks', /10\.0\.0\.1 is a private address/],
    ];
    for (const [url, pattern] of cases) {
      const outcome = await deliverOnce(url, signed(), { policy: strict, timeoutMs: 2_000 });
      refusedOutcome(outcome, pattern);
      assert.ok(!outcome.error?.includes('receiver-secret'), 'the URL is not echoed');
    }
    assert.equal(v4.connections, 0);
    assert.equal(v6.connections, 0);
  });

  test('a name that resolves to loopback is refused when the connection is made', async () => {
    const receiver = await Receiver.start('127.0.0.1');
    const { resolve, calls } = scriptedResolver(['127.0.0.1']);
    const outcome = await deliverOnce(receiver.url('hooks.example'), signed(), {
      policy: policy({ resolve }),
    });
    refusedOutcome(outcome, /hooks\.example resolved to 127\.0\.0\.1, a loopback address/);
    assert.deepEqual(calls, ['hooks.example']);
    assert.equal(receiver.connections, 0);
  });

  test('the sender stops at a refusal: no retry would be allowed either', async () => {
    const receiver = await Receiver.start('127.0.0.1');
    const sender = new WebhookSender({ secret: SECRET, retryScheduleS: [0, 0] });
    const attempts: WebhookAttempt[] = [];
    await sender.send(
      receiver.url(),
      { type: 'budget.alert', data: {} },
      { onAttempt: (a) => attempts.push(a) },
    );
    assert.equal(attempts.length, 1);
    assert.equal(attempts[0]?.refused, true);
    assert.equal(attempts[0]?.final, true);
    assert.equal(receiver.connections, 0);
    sender.close();
  });

  test('delivered when the allowlist names the address, its block or its host', async () => {
    const v4 = await Receiver.start('127.0.0.1');
    const v6 = await Receiver.start('::1');
    const blocks = policy({ allowlist: ['127.0.0.0/8', '::1/128'] });
    const hosts = policy({ allowlist: ['localhost'] });
    const named = policy({
      allowlist: ['*.internal.example'],
      resolve: scriptedResolver(['127.0.0.1']).resolve,
    });
    const cases: Array<[string, WebhookPolicy]> = [
      [v4.url(), blocks],
      [v4.url('2130706433'), blocks],
      [v4.url('[::ffff:127.0.0.1]'), blocks],
      [v6.url(), blocks],
      [v4.url('localhost'), hosts],
      [v4.url('hooks.internal.example'), named],
    ];
    for (const [url, allowing] of cases) {
      const outcome = await deliverOnce(url, signed(), { policy: allowing });
      assert.deepEqual([outcome.ok, outcome.status], [true, 204], `${url}: ${JSON.stringify(outcome)}`);
    }
    assert.equal(v4.received.length, 5);
    assert.equal(v6.received.length, 1);
  });

  test('DNS rebinding: an answer that turns private after the check never reaches the private address', async () => {
    // 127.0.0.2 (allowlisted) plays the public receiver; it closes each connection, so every delivery connects anew.
    const outside = await Receiver.start('127.0.0.2', (res) =>
      res.writeHead(204, { connection: 'close' }).end(),
    );
    const inside = await Receiver.start('127.0.0.1');
    const { resolve, calls } = scriptedResolver(['127.0.0.2'], ['127.0.0.1']);
    const rebinding = policy({ allowlist: ['127.0.0.2'], resolve });
    // The first answer, checked (as a job API would check a URL when it is given), connects.
    const url = `http://rebind.example:${inside.port}/hooks`;
    const first = await deliverOnce(`http://rebind.example:${outside.port}/hooks`, signed(), {
      policy: rebinding,
    });
    assert.deepEqual([first.ok, outside.received.length], [true, 1]);
    // The next connection resolves again and is judged on that answer.
    const second = await deliverOnce(url, signed(), { policy: rebinding });
    refusedOutcome(second, /rebind\.example resolved to 127\.0\.0\.1, a loopback address/);
    assert.deepEqual(calls, ['rebind.example', 'rebind.example']);
    assert.equal(inside.connections, 0);
  });

  test('DNS rebinding: a check that passed just before does not carry over to the connect', async () => {
    const inside = await Receiver.start('127.0.0.1');
    const { resolve, calls } = scriptedResolver(['8.8.8.8'], ['127.0.0.1']);
    const rebinding = policy({ resolve });
    const url = inside.url('rebind.example');
    assert.equal(rebinding.checkUrl(url).hostname, 'rebind.example');
    assert.deepEqual(await rebinding.resolveAllowed('rebind.example'), [{ address: '8.8.8.8', family: 4 }]);
    const outcome = await deliverOnce(url, signed(), { policy: rebinding });
    refusedOutcome(outcome, /127\.0\.0\.1, a loopback address/);
    assert.equal(calls.length, 2);
    assert.equal(inside.connections, 0);
  });

  test('a name answering one allowed and one private address is refused whole', async () => {
    const outside = await Receiver.start('127.0.0.2');
    const inside = await Receiver.start('127.0.0.1');
    const mixed = policy({
      allowlist: ['127.0.0.2'],
      resolve: scriptedResolver(['127.0.0.2', '127.0.0.1']).resolve,
    });
    refusedOutcome(
      await deliverOnce(outside.url('mixed.example'), signed(), { policy: mixed }),
      /127\.0\.0\.1/,
    );
    assert.equal(outside.connections + inside.connections, 0);
  });
});

describe('what a receiver cannot make us do', () => {
  const loopback = () => policy({ allowlist: ['127.0.0.0/8'] });

  test('a 302 is a failed attempt, not followed', async () => {
    const target = await Receiver.start('127.0.0.1');
    const redirecting = await Receiver.start('127.0.0.1', (res) =>
      res.writeHead(302, { location: target.url() }).end(),
    );
    const outcome = await deliverOnce(redirecting.url(), signed(), { policy: loopback() });
    assert.deepEqual(
      [outcome.ok, outcome.status, outcome.error],
      [false, 302, 'HTTP 302 (redirects are not followed)'],
    );
    assert.equal(redirecting.received.length, 1);
    assert.equal(target.connections, 0);
  });

  test('a receiver that never answers costs one timeout', async () => {
    const hanging = await Receiver.start('127.0.0.1', () => {});
    const outcome = await deliverOnce(hanging.url(), signed(), { policy: loopback(), timeoutMs: 300 });
    assert.deepEqual([outcome.ok, outcome.error], [false, 'timed out after 300 ms']);
    assert.ok(outcome.ms >= 250, String(outcome.ms));
  });

  test('the caller can abandon an attempt', async () => {
    const hanging = await Receiver.start('127.0.0.1', () => {});
    const controller = new AbortController();
    const pending = deliverOnce(hanging.url(), signed(), { policy: loopback(), signal: controller.signal });
    await hanging.arrived(1);
    controller.abort();
    const outcome = await pending;
    assert.deepEqual([outcome.ok, outcome.error], [false, 'aborted']);
  });

  test('a huge answer is not read whole', async () => {
    const chatty = await Receiver.start('127.0.0.1', (res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(Buffer.alloc(8 * 1024 * 1024, 'x'));
    });
    const outcome = await deliverOnce(chatty.url(), signed(), { policy: loopback() });
    assert.deepEqual([outcome.ok, outcome.status], [true, 200]);
  });

  test('a failure names its code, never the URL', async () => {
    const gone = await Receiver.start('127.0.0.1');
    const url = gone.url();
    await gone.close();
    const outcome = await deliverOnce(url, signed(), { policy: loopback() });
    assert.deepEqual([outcome.ok, outcome.error], [false, 'connection failed (ECONNREFUSED)']);
    assert.equal(outcome.refused, undefined);
  });
});
