/**
 * The push-style upstream calls (src/providers/upstream-call.ts) against a
 * real HTTP server on loopback. The event stream: items and the end, a
 * failure after the items before it, error answers mapped, the total,
 * first-byte and idle deadlines (a reader holding the answer back is not an
 * idle upstream) and the attempt's signal, a reader that stops early
 * releasing the connection, and a slow reader holding the upstream back
 * (backpressure); relayed push-style, the same order, end and failure, a sink
 * that stops releasing the connection, and a slow sink holding the upstream
 * back. The JSON answer: parsed with its headers, error answers mapped, a
 * body that is not JSON, the three deadlines.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { GatewayError } from '../../src/core/errors.ts';
import { UpstreamClient } from '../../src/providers/http.ts';
import type { SseEvent } from '../../src/providers/sse.ts';
import type { AttemptContext } from '../../src/providers/types.ts';
import type { EventReader, RelayableStream, RelayEnd } from '../../src/providers/upstream-event-stream.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Data events as strings; `[END]` completes the stream, an `error` event fails it. */
class TextReader implements EventReader<string> {
  complete = false;
  read(event: SseEvent, out: string[]): void {
    if (event.event === 'error') throw new GatewayError('upstream_error', `upstream said: ${event.data}`);
    if (event.data === '[END]') this.complete = true;
    else out.push(event.data);
  }
  end(): void {
    if (!this.complete)
      throw new GatewayError('upstream_bad_response', 'Upstream stream ended before completion');
  }
}

function context(
  signal = new AbortController().signal,
  totalMs = 10_000,
  more: { firstByteMs?: number; idleMs?: number } = {},
): AttemptContext {
  return {
    signal,
    requestId: 'req-1',
    timeouts: { connectMs: 2_000, firstByteMs: 5_000, idleMs: 5_000, totalMs, ...more },
  };
}

const mapError = (status: number, _headers: unknown, text: string) =>
  new GatewayError('upstream_error', `status ${status}: ${text}`);

function sse(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
}

/**
 * A handler streaming `frames` numbered 1 KB events as fast as the connection
 * takes them (10 MB for 10,000: far more than any socket buffers), then the end.
 */
function flooding(frames: number): Handler {
  return (_req, res) => {
    sse(res);
    let sent = 0;
    const pump = (): void => {
      while (sent < frames) {
        if (!res.write(`data: ${sent++} ${'x'.repeat(1000)}\n\n`)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end('data: [END]\n\n');
    };
    pump();
  };
}

/** A flooding frame's number. */
function frameNumber(item: string): number {
  return Number(item.slice(0, item.indexOf(' ')));
}

/** Notes the most items ever waiting for the consumer. */
class QueueWatchingReader extends TextReader {
  mostQueued = 0;
  override read(event: SseEvent, out: string[]): void {
    super.read(event, out);
    this.mostQueued = Math.max(this.mostQueued, out.length);
  }
}

/** Three events split across two writes (mid-event, CRLF line ends in the second), then the end. */
const splitAnywhere: Handler = (_req, res) => {
  sse(res);
  res.write('data: one\n\ndata: tw');
  setImmediate(() => res.end('o\n\ndata: three\r\n\r\ndata: [END]\n\n'));
};

/** Two events, then an error event in the same chunk as the second, and one after it never to be seen. */
const failingMidStream: Handler = (_req, res) => {
  sse(res);
  res.write('data: a\n\n');
  setImmediate(() => res.end('data: b\n\nevent: error\ndata: overloaded\n\ndata: never\n\n'));
};

/** A handler that answers with `status` and a JSON content type, whatever the body. */
function answering(status: number, body: string): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };
}

describe('upstream event stream', () => {
  let server: Server;
  let client: UpstreamClient;
  let handler: Handler = () => undefined;
  const closed: Promise<void>[] = [];

  before(async () => {
    server = createServer((req, res) => {
      closed.push(once(res, 'close').then(() => undefined));
      req.resume();
      req.on('end', () => handler(req, res));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = new UpstreamClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`);
  });

  after(async () => {
    await client.close();
    server.closeAllConnections();
    server.close();
  });

  const open = (ctx = context(), reader = new TextReader()) =>
    client.postEventStream(
      '/stream',
      { 'content-type': 'application/json' },
      { stream: true },
      ctx,
      reader,
      mapError,
    );

  async function collect(stream: AsyncIterable<string>): Promise<{ items: string[]; error?: unknown }> {
    const items: string[] = [];
    try {
      for await (const item of stream) items.push(item);
    } catch (error) {
      return { items, error };
    }
    return { items };
  }

  test('items arrive in order, events split anywhere, then the end', async () => {
    handler = splitAnywhere;
    const { items, error } = await collect(await open());
    assert.equal(error, undefined);
    assert.deepEqual(items, ['one', 'two', 'three']);
  });

  test('a failure mid-stream comes after the items before it, in the same chunk too', async () => {
    handler = failingMidStream;
    const { items, error } = await collect(await open());
    assert.deepEqual(items, ['a', 'b']);
    assert.ok(GatewayError.is(error));
    assert.equal(error.message, 'upstream said: overloaded');
  });

  test('a stream cut before completion is reported after its items', async () => {
    handler = (_req, res) => {
      sse(res);
      res.end('data: a\n\n');
    };
    const { items, error } = await collect(await open());
    assert.deepEqual(items, ['a']);
    assert.ok(GatewayError.is(error));
    assert.equal(error.code, 'upstream_bad_response');
  });

  test('an error answer is read and mapped; a 200 that is not an event stream maps as 502', async () => {
    handler = answering(429, '{"error":"slow down"}');
    await assert.rejects(open(), { message: 'status 429: {"error":"slow down"}' });
    handler = answering(200, '{"error":"not a stream"}');
    await assert.rejects(open(), { message: 'status 502: {"error":"not a stream"}' });
  });

  test('the total deadline fails a stream that stalls, after what it sent', async () => {
    handler = (_req, res) => {
      sse(res);
      res.write('data: a\n\n');
    };
    const { items, error } = await collect(await open(context(undefined, 300)));
    assert.deepEqual(items, ['a']);
    assert.ok(GatewayError.is(error));
    assert.equal(error.code, 'upstream_timeout');
  });

  test("the attempt's signal aborts: before the request is written, before the answer, and mid-stream as the signal's reason", async () => {
    const reason = new Error('client went away');
    // Aborted in the tick the call was made: undici has not written it yet, and never does.
    let written = 0;
    handler = () => {
      written++;
    };
    const unsent = new AbortController();
    const opening = open(context(unsent.signal));
    unsent.abort(reason);
    await assert.rejects(opening, (error) => error === reason);
    assert.equal(written, 0, 'the aborted request reached the upstream');

    const early = new AbortController();
    handler = () => early.abort(reason);
    await assert.rejects(open(context(early.signal)), (error) => error === reason);

    const late = new AbortController();
    handler = (_req, res) => {
      sse(res);
      res.write('data: a\n\n');
    };
    const stream = await open(context(late.signal));
    assert.deepEqual(await stream.next(), { value: 'a', done: false });
    const waiting = stream.next();
    late.abort(reason);
    await assert.rejects(waiting, (error) => error === reason);
  });

  test('a reader that stops early releases the upstream connection', async () => {
    closed.length = 0;
    handler = (_req, res) => {
      sse(res);
      res.write('data: a\n\ndata: b\n\n');
    };
    const stream = await open();
    assert.deepEqual(await stream.next(), { value: 'a', done: false });
    assert.deepEqual(await stream.return!(), { value: undefined, done: true });
    // The server sees its response closed under it: the socket was released, not left streaming.
    await closed[0];
    assert.deepEqual(await stream.next(), { value: undefined, done: true });
  });

  test('a reader slower than its upstream holds the upstream back', async () => {
    const frames = 10_000;
    handler = flooding(frames);
    const reader = new QueueWatchingReader();
    let count = 0;
    // One item a turn of the event loop, while a turn reads up to 64 KB (~64 frames) of the socket:
    // unpaused, the queue would grow by thousands.
    for await (const item of await open(context(), reader)) {
      assert.equal(frameNumber(item), count++);
      await new Promise(setImmediate);
    }
    assert.equal(count, frames);
    assert.ok(reader.mostQueued <= 64 + 128, `${reader.mostQueued} items were queued at once`);
  });

  test('an upstream that never answers fails at the first-byte timeout, before the total', async () => {
    handler = () => undefined;
    await assert.rejects(open(context(undefined, 60_000, { firstByteMs: 150 })), {
      code: 'upstream_timeout',
      message: 'Upstream first-byte timeout',
    });
  });

  test('a stream that goes silent fails at the idle timeout, after what it sent', async () => {
    handler = (_req, res) => {
      sse(res);
      res.write('data: a\n\n');
      setTimeout(() => res.write('data: b\n\n'), 100);
    };
    const { items, error } = await collect(await open(context(undefined, 60_000, { idleMs: 250 })));
    assert.deepEqual(items, ['a', 'b']);
    assert.ok(GatewayError.is(error));
    assert.equal(error.message, 'Upstream stopped sending (idle timeout)');
  });

  test('a reader holding the answer back longer than the idle timeout is not the upstream going silent', async () => {
    handler = (_req, res) => {
      sse(res);
      // Far more than the socket buffers hold: the reader's pause holds the server back.
      res.end(`${'data: x\n\n'.repeat(50_000)}data: [END]\n\n`);
    };
    const stream = await open(context(undefined, 60_000, { idleMs: 100 }));
    assert.deepEqual(await stream.next(), { value: 'x', done: false });
    // The reader stops for three idle timeouts while the parser is paused with most of the body unread.
    await new Promise((resolve) => setTimeout(resolve, 350));
    const { items, error } = await collect(stream);
    assert.equal(error, undefined);
    assert.equal(items.length, 49_999);
  });

  describe('relayed push-style (relay)', () => {
    async function relayAll(stream: RelayableStream<string>): Promise<{ items: string[]; ended: RelayEnd }> {
      const items: string[] = [];
      const ended = await stream.relay((item) => {
        items.push(item);
        return true;
      });
      return { items, ended };
    }

    test('items in order, events split anywhere, then the end; a failure after the items before it', async () => {
      handler = splitAnywhere;
      assert.deepEqual(await relayAll(await open()), {
        items: ['one', 'two', 'three'],
        ended: { failure: undefined, stopped: false },
      });
      handler = failingMidStream;
      const { items, ended } = await relayAll(await open());
      assert.deepEqual(items, ['a', 'b']);
      assert.equal((ended.failure as Error).message, 'upstream said: overloaded');
    });

    // The call's own deadline and idle timeout are far off: only the relay's abort can close the
    // upstream response in time (without it the test fails by its timeout).
    test('a sink that says false (client gone) or throws stops the relay and releases the upstream', {
      timeout: 30_000,
    }, async () => {
      for (const stop of [() => false, () => assert.fail('the sink broke')]) {
        closed.length = 0;
        handler = (_req, res) => {
          sse(res);
          res.write('data: a\n\ndata: b\n\n');
        };
        const seen: string[] = [];
        const patient = { ...context(undefined, 600_000) };
        patient.timeouts = { ...patient.timeouts, firstByteMs: 600_000, idleMs: 600_000 };
        const ended = await (await open(patient)).relay((item) => {
          seen.push(item);
          return stop();
        });
        assert.deepEqual(seen, ['a'], 'nothing is handed over after the sink stopped');
        if (ended.stopped) assert.equal(ended.failure, undefined);
        else assert.match(String(ended.failure), /the sink broke/);
        // The server sees its response closed under it: the socket was released.
        await closed[0];
      }
    });

    test('a sink whose writes wait holds the upstream back, and keeps the order', async () => {
      const frames = 10_000;
      handler = flooding(frames);
      const reader = new QueueWatchingReader();
      let next = 0;
      let writing = false;
      // Every write waits a turn of the event loop, as a write to a full socket waits for drain.
      const ended = await (await open(context(), reader)).relay((item) => {
        assert.equal(writing, false, 'an item was handed over while a write waited');
        assert.equal(frameNumber(item), next++);
        writing = true;
        return new Promise<boolean>((resolve) =>
          setImmediate(() => {
            writing = false;
            resolve(true);
          }),
        );
      });
      assert.deepEqual(ended, { failure: undefined, stopped: false });
      assert.equal(next, frames);
      assert.ok(reader.mostQueued <= 64 + 128, `${reader.mostQueued} items were queued at once`);
    });
  });

  describe('a JSON answer', () => {
    const post = (ctx = context()) =>
      client.postForJson('/json', { 'content-type': 'application/json' }, { q: 1 }, ctx, mapError);

    test('is parsed, in pieces too, with its headers', async () => {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': 'yes' });
        res.write('{"answer":');
        setImmediate(() => res.end('[1,2,3]}'));
      };
      const { value, headers } = await post();
      assert.deepEqual(value, { answer: [1, 2, 3] });
      assert.equal(headers['x-upstream'], 'yes');
    });

    test('an error answer is mapped by the adapter; a 2xx that is not JSON is a bad response', async () => {
      handler = answering(503, '{"error":"busy"}');
      await assert.rejects(post(), { message: 'status 503: {"error":"busy"}' });
      handler = answering(200, '<html>');
      await assert.rejects(post(), { code: 'upstream_bad_response' });
    });

    test('the total deadline fails an answer that never comes', async () => {
      handler = () => undefined;
      await assert.rejects(post(context(undefined, 200)), {
        code: 'upstream_timeout',
        message: 'Upstream total timeout exceeded',
      });
    });

    test('a body that stops mid-way fails at the idle timeout; one that never starts at the first byte', async () => {
      handler = (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"answer":');
      };
      await assert.rejects(post(context(undefined, 60_000, { idleMs: 150 })), {
        code: 'upstream_timeout',
        message: 'Upstream stopped sending (idle timeout)',
      });
      handler = () => undefined;
      await assert.rejects(post(context(undefined, 60_000, { firstByteMs: 150 })), {
        code: 'upstream_timeout',
        message: 'Upstream first-byte timeout',
      });
    });
  });
});
