/**
 * A relayed stream and a client that stops reading (src/server/routes/model-request.ts
 * `relayStream`, src/server/sse-writer.ts): once the client's socket is full, a write
 * answers with a promise, and the relay takes nothing more from the upstream until it
 * settles; memory stays bounded by the socket's buffers, not by the upstream's speed.
 * Real sockets on loopback: a Node HTTP server relaying to a client paused on purpose.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { StreamStart } from '../../src/dispatch/dispatch.ts';
import { relayStream } from '../../src/server/routes/model-request.ts';
import { SseWriter } from '../../src/server/sse-writer.ts';

const FRAMES = 2_000;
const FRAME = 'x'.repeat(8 * 1024);

test('a client that stops reading holds the relay back until its socket drains', async () => {
  let waitingForDrain = false;
  let pulledWhileWaiting = 0;
  let waits = 0;
  let firstWait: () => void = () => undefined;
  const sawWait = new Promise<void>((resolve) => {
    firstWait = resolve;
  });
  let pulled = 1;
  // The upstream side: as fast as it is asked, and it notes being asked while a write waits.
  const rest: AsyncIterator<string> = {
    next: () => {
      if (waitingForDrain) pulledWhileWaiting++;
      return Promise.resolve(
        pulled < FRAMES ? { value: String(pulled++), done: false } : { value: undefined, done: true },
      );
    },
  };
  let relayed: Promise<{ failure: unknown; clientGone: boolean }> | undefined;
  const server = createServer((_req, res) => {
    const writer = new SseWriter(res, 60_000);
    writer.start({});
    const start = { attempt: undefined, first: '0', rest } as unknown as StreamStart<string>;
    relayed = relayStream(start, new AbortController().signal, writer, () => {
      const sent = writer.data(FRAME);
      if (typeof sent === 'boolean') return sent;
      waitingForDrain = true;
      waits++;
      firstWait();
      return sent.then((ok) => {
        waitingForDrain = false;
        return ok;
      });
    });
    void relayed.then(() => writer.end());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const res = await new Promise<IncomingMessage>((resolve) => {
      get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, resolve);
    });
    res.pause();
    // The client reads nothing until the relay had to wait: 16 MB outgrow any socket buffers.
    await sawWait;
    let frames = 0;
    let tail = '';
    res.setEncoding('utf8');
    for await (const text of res) {
      const joined = tail + (text as string);
      const parts = joined.split('\n\n');
      tail = parts.pop() ?? '';
      frames += parts.length;
    }
    assert.equal(frames, FRAMES);
    assert.ok(waits > 0);
    assert.equal(pulledWhileWaiting, 0, 'the relay pulled from the upstream while a write waited for drain');
    assert.deepEqual(await relayed, { failure: undefined, clientGone: false });
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
