/**
 * Incremental Server-Sent Events parsing (WHATWG EventSource rules).
 *
 * Bytes arrive split anywhere: inside a multi-byte UTF-8 character, inside a
 * `\r\n` pair, inside a field name. A streaming TextDecoder carries partial
 * characters across pushes; a pending-CR flag carries a `\r` whose `\n` may
 * come in the next push. Events are emitted at their terminating blank line.
 *
 * Most pushes are one whole event, `data: …\n\n`, as an upstream writes
 * them: such a push, arriving between events, is read without the line
 * scan, and its event keeps the bytes it came in (`frame`), so a relay that
 * sends the event on unchanged can write them as they are.
 */
import { isUtf8 } from 'node:buffer';

export interface SseEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  id?: string;
  /**
   * The bytes the event came in, exactly `data: ${data}\n\n` (valid UTF-8):
   * set when the event was a push of its own; absent otherwise.
   */
  frame?: Uint8Array;
}

const DATA_PREFIX = [100, 97, 116, 97, 58, 32]; // 'data: '
const LF = 10;
const CR = 13;

export class SseParser {
  // The byte order mark is dropped here, at the stream's start only (`#decode`): a push
  // read as a whole event never reaches the decoder, which would take a later BOM for the first.
  readonly #decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  /** Some text was read: a byte order mark from here on is a character. */
  #started = false;
  #buffer = '';
  /** No line, event or character begun: a push may be read as a whole event (`#wholeEvent`). */
  #betweenEvents = true;
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
    // No bytes change nothing (the scan would only forget that the parser was between events).
    if (chunk.length === 0) return [];
    if (this.#betweenEvents) {
      const event = this.#wholeEvent(chunk);
      if (event !== undefined) return [event];
    }
    const events = this.#consume(this.#decode(chunk));
    // A push ending in LF leaves no partial character in the decoder; with no line and
    // no event begun, the next push starts afresh.
    this.#betweenEvents =
      chunk[chunk.length - 1] === LF &&
      this.#buffer.length === 0 &&
      !this.#pendingCR &&
      this.#data.length === 0 &&
      this.#event === '';
    return events;
  }

  /** Ends the stream; an event not terminated by a blank line is dropped, as browsers do. */
  end(): SseEvent[] {
    const events = this.#consume(this.#decode());
    // What is left is an unterminated line: a field line completes no event.
    this.#buffer = '';
    return events;
  }

  /** The text of `chunk` (the decoder flushed without one), the stream's leading byte order mark dropped. */
  #decode(chunk?: Uint8Array): string {
    const text = chunk === undefined ? this.#decoder.decode() : this.#decoder.decode(chunk, { stream: true });
    if (this.#started || text.length === 0) return text;
    this.#started = true;
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
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

  /**
   * `chunk` read as one whole event when it is exactly `data: <one line>\n\n`
   * in valid UTF-8 (what the line scan would make of it, without the scan);
   * otherwise undefined, and the caller scans it.
   */
  #wholeEvent(chunk: Uint8Array): SseEvent | undefined {
    const end = chunk.length - 2;
    if (end < DATA_PREFIX.length || chunk[end] !== LF || chunk[end + 1] !== LF) return undefined;
    for (let i = 0; i < DATA_PREFIX.length; i++) if (chunk[i] !== DATA_PREFIX[i]) return undefined;
    // undici hands us Buffers; another caller's Uint8Array is viewed as one, not copied.
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (bytes.indexOf(LF, DATA_PREFIX.length) !== end || bytes.indexOf(CR, DATA_PREFIX.length) !== -1) {
      return undefined;
    }
    if (!isUtf8(bytes)) return undefined;
    const event: SseEvent = { event: 'message', data: bytes.toString('utf8', DATA_PREFIX.length, end) };
    if (this.#id !== undefined) event.id = this.#id;
    event.frame = chunk;
    this.#started = true;
    return event;
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
