/**
 * Writes Server-Sent Events to a client with backpressure and heartbeats.
 *
 * - a frame is handed to the socket at once; if the socket's buffer is full
 *   the write answers with a promise that waits for `drain`, so a slow reader
 *   slows us (and, through the awaiting loop, our reads from the upstream)
 *   instead of growing memory without bound.
 * - A heartbeat goes out after `heartbeatMs` of silence, so idle-timeout
 *   proxies between us and the client keep the stream open: a comment line
 *   (`: keep-alive`) by default, or the API's own frame (Anthropic's `ping`).
 *   A frame only marks the stream as busy; the one timer checks the mark when
 *   it fires (so silence is noticed within 1–2 × heartbeatMs), instead of
 *   being re-armed for every frame of a fast stream.
 */
import type { ServerResponse } from 'node:http';

/**
 * What a write says: true (handed to the socket) or false (the client is
 * gone) when known at once, which is nearly always; a promise of it when the
 * socket's buffer is full and the write waits for `drain`. A relay loop
 * awaits only the promise, not a tick per frame.
 */
export type Sent = boolean | Promise<boolean>;

export class SseWriter {
  readonly #res: ServerResponse;
  readonly #heartbeatMs: number;
  readonly #heartbeatFrame: string;
  #timer: NodeJS.Timeout | undefined;
  /** A frame went out since the heartbeat timer last fired. */
  #wrote = false;
  #closed = false;

  constructor(res: ServerResponse, heartbeatMs: number, heartbeatFrame = ': keep-alive\n\n') {
    this.#res = res;
    this.#heartbeatMs = heartbeatMs;
    this.#heartbeatFrame = heartbeatFrame;
    res.once('close', () => {
      this.#closed = true;
      this.#stopHeartbeat();
    });
  }

  get closed(): boolean {
    return this.#closed || this.#res.destroyed;
  }

  start(headers: Record<string, string | string[]>): void {
    this.#res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      ...headers,
    });
    // Headers go out with the first frame; flushHeaders would cost a packet.
    this.#armHeartbeat();
  }

  /** Sends one `data:` frame: false if the client is gone (see `Sent`). */
  data(payload: string): Sent {
    return this.#write(`data: ${payload}\n\n`);
  }

  /** Sends one complete, already encoded frame (e.g. with an `event:` line): false if the client is gone (see `Sent`). */
  frame(frame: string | Uint8Array): Sent {
    return this.#write(frame);
  }

  /** Ends the stream normally. */
  end(): void {
    this.#stopHeartbeat();
    if (!this.closed) this.#res.end();
  }

  #write(frame: string | Uint8Array): Sent {
    if (this.closed) return false;
    this.#wrote = true;
    if (this.#res.write(frame)) return true;
    return new Promise<boolean>((resolve) => {
      const done = () => {
        this.#res.off('drain', done);
        this.#res.off('close', done);
        resolve(!this.closed);
      };
      this.#res.on('drain', done);
      this.#res.on('close', done);
    });
  }

  #armHeartbeat(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => this.#beat(), this.#heartbeatMs);
  }

  #beat(): void {
    if (this.closed) return;
    if (this.#wrote) this.#wrote = false;
    else this.#res.write(this.#heartbeatFrame);
    this.#timer?.refresh();
  }

  #stopHeartbeat(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
