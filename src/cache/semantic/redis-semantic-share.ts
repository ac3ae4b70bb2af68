/**
 * Shares remembered prompts between instances through one Redis stream
 * (`<prefix>semantic-cache`, trimmed to about `maxEntries`): each instance
 * appends what it remembers and reads the stream from its start, so one that
 * joins late still sees the prompts remembered before it came.
 *
 * The reader blocks on its own connection (XREAD BLOCK); when Redis is away it
 * retries with back-off and picks up where it stopped (entries trimmed
 * meanwhile are lost to it: those prompts are a miss here, their answers are
 * still found by exact key). Entries are checked as they are read: an entry
 * another version or a stranger wrote is skipped, never trusted.
 */
import { duplicateRedis, type RedisConnection } from '../../store/redis.ts';
import type { RedisKeys } from '../../store/redis-keys.ts';
import type { SemanticShare, SharedPrompt } from './semantic-cache.ts';

/** How long one XREAD waits for new entries before asking again. */
const BLOCK_MS = 5_000;
const READ_COUNT = 500;
const MAX_DIMENSIONS = 8_192;

export class RedisSemanticShare implements SemanticShare {
  readonly #redis: RedisConnection;
  readonly #stream: string;
  readonly #maxEntries: number;
  #reader: RedisConnection | undefined;
  #following: Promise<void> | undefined;
  #closed = false;

  constructor(redis: RedisConnection, keys: RedisKeys, options: { maxEntries: number }) {
    this.#redis = redis;
    this.#stream = keys.semanticStream;
    this.#maxEntries = options.maxEntries;
  }

  async publish(prompt: SharedPrompt): Promise<void> {
    await this.#redis.xadd(this.#stream, 'MAXLEN', '~', this.#maxEntries, '*', 'p', encode(prompt));
  }

  start(onPrompt: (prompt: SharedPrompt) => void): void {
    if (this.#reader !== undefined || this.#closed) return;
    // Its own connection: a blocked XREAD would hold up every other command on a shared one.
    const reader = duplicateRedis(this.#redis, { commandTimeout: BLOCK_MS + 5_000 });
    reader.on('error', () => undefined);
    this.#reader = reader;
    this.#following = this.#follow(reader, onPrompt);
  }

  /** Stops reading; resolves once the reader's loop has ended. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#reader?.disconnect();
    await this.#following;
  }

  async #follow(reader: RedisConnection, onPrompt: (prompt: SharedPrompt) => void): Promise<void> {
    let last = '0';
    let failures = 0;
    while (!this.#closed) {
      try {
        const answer = await reader.xread(
          'COUNT',
          READ_COUNT,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.#stream,
          last,
        );
        failures = 0;
        for (const [, entries] of answer ?? []) {
          for (const [id, fields] of entries) {
            last = id;
            const prompt = fields[0] === 'p' && fields[1] !== undefined ? decode(fields[1]) : undefined;
            if (prompt !== undefined) onPrompt(prompt);
          }
        }
      } catch {
        if (this.#closed) return;
        failures++;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** failures)).unref());
      }
    }
  }
}

function encode(prompt: SharedPrompt): string {
  const { vector } = prompt;
  return JSON.stringify({
    m: prompt.key.model,
    s: prompt.key.scope,
    h: prompt.key.hash,
    p: prompt.partition,
    e: prompt.expiresAt,
    v: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64'),
  });
}

function decode(text: string): SharedPrompt | undefined {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { m, s, h, p, e, v } = value;
  if (typeof m !== 'string' || typeof s !== 'string' || typeof h !== 'string' || typeof p !== 'string') {
    return undefined;
  }
  if (typeof e !== 'number' || !Number.isFinite(e) || typeof v !== 'string') return undefined;
  const bytes = Buffer.from(v, 'base64');
  if (bytes.length === 0 || bytes.length % 4 !== 0 || bytes.length / 4 > MAX_DIMENSIONS) return undefined;
  // Copied into its own aligned buffer (a Buffer may be a view into a shared pool at any offset).
  const vector = new Float32Array(bytes.length / 4);
  new Uint8Array(vector.buffer).set(bytes);
  for (let i = 0; i < vector.length; i++) if (!Number.isFinite(vector[i]!)) return undefined;
  return { key: { model: m, scope: s, hash: h }, partition: p, vector, expiresAt: e };
}
