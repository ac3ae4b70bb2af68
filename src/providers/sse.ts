/**
 * Incremental Server-Sent Events parsing (WHATWG EventSource rules).
 *
 * Bytes arrive split anywhere: inside a multi-byte UTF-8 character, inside a
 * `\r\n` pair, inside a field name. A streaming TextDecoder carries partial
 * characters across pushes; a pending-CR flag carries a `\r` whose `\n` may
 * come in the next push. Events are emitted at their terminating blank line.
 */

export interface SseEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  id?: string;
}

export class SseParser {
  readonly #decoder = new TextDecoder('utf-8');
  #buffer = '';
  #pendingCR = false;
  #event = '';
  #data: string[] = [];
  #id: string | undefined;
  /** Guards against an upstream that never ends a line. */
  readonly #maxLineLength: number;

  constructor(options: { maxLineLength?: number } = {}) {
    this.#maxLineLength = options.maxLineLength ?? 8 * 1024 * 1024;
  }

  /** Feeds bytes; returns the events they complete. */
  push(chunk: Uint8Array): SseEvent[] {
    return this.#consume(this.#decoder.decode(chunk, { stream: true }));
  }

  /** Ends the stream; an event not terminated by a blank line is dropped, as browsers do. */
  end(): SseEvent[] {
    const events = this.#consume(this.#decoder.decode());
    // What is left is an unterminated line: a field line completes no event.
    this.#buffer = '';
    return events;
  }

  #consume(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    if (this.#pendingCR && text.length > 0) {
      if (text.charCodeAt(0) === 10) start = 1;
      this.#pendingCR = false;
    }
    const buffer = this.#buffer.length > 0 ? this.#buffer + text.slice(start) : text.slice(start);
    let lineStart = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#line(buffer.slice(lineStart, i), events);
      if (c === 13) {
        if (i + 1 < buffer.length) {
          if (buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.#pendingCR = true;
        }
      }
      lineStart = i + 1;
    }
    this.#buffer = buffer.slice(lineStart);
    if (this.#buffer.length > this.#maxLineLength) {
      throw new SseLineTooLongError(this.#maxLineLength);
    }
    return events;
  }

  #line(line: string, events: SseEvent[]): void {
    if (line.length === 0) {
      if (this.#data.length > 0 || this.#event !== '') {
        const event: SseEvent = { event: this.#event || 'message', data: this.#data.join('\n') };
        if (this.#id !== undefined) event.id = this.#id;
        events.push(event);
      }
      this.#event = '';
      this.#data = [];
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment (heartbeats)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') this.#id = value;
    // `retry:` and unknown fields are ignored, per spec.
  }
}

export class SseLineTooLongError extends Error {
  override readonly name = 'SseLineTooLongError';
  constructor(limit: number) {
    super(`upstream SSE line exceeded ${limit} bytes`);
  }
}
