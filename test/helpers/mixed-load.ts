/**
 * A closed-loop mixed load through the official OpenAI SDK (retries off, so
 * nothing is hidden): each client alternates a streamed and a plain chat
 * completion and checks the whole answer. Every request's outcome is kept
 * with the instance that answered it (a header the test's load balancer adds)
 * and when its response headers arrived, so a test can say which failures
 * were in flight where.
 */
import OpenAI from 'openai';

export interface Outcome {
  stream: boolean;
  ok: boolean;
  /** HTTP status (0: no response at all). */
  status: number;
  /** The answering upstream (last address of nginx's $upstream_addr), when headers arrived. */
  upstream: string | undefined;
  /** performance.now() once the response headers were in; undefined if none came. */
  headersAt: number | undefined;
  error?: string;
}

export interface MixedLoadOptions {
  baseUrl: string;
  apiKey: string;
  /** Model whose streams take a while (a slow mock), so some are always in flight. */
  model: string;
  clients: number;
  /** Response header naming the upstream that answered. */
  upstreamHeader: string;
}

export class MixedLoad {
  readonly outcomes: Outcome[] = [];
  readonly #client: OpenAI;
  readonly #options: MixedLoadOptions;
  #running = true;
  readonly #done: Promise<void>;

  constructor(options: MixedLoadOptions) {
    this.#options = options;
    this.#client = new OpenAI({
      baseURL: options.baseUrl,
      apiKey: options.apiKey,
      maxRetries: 0,
      timeout: 60_000,
    });
    this.#done = Promise.all(Array.from({ length: options.clients }, (_, i) => this.#loop(i))).then(() => {});
  }

  /** Resolves once an outcome satisfies `predicate` (checked as each one arrives). */
  until(predicate: (o: Outcome, all: readonly Outcome[]) => boolean): Promise<void> {
    if (this.outcomes.some((o) => predicate(o, this.outcomes))) return Promise.resolve();
    return new Promise((resolve) => {
      this.#pending.push(() => {
        const last = this.outcomes.at(-1);
        if (last === undefined || !predicate(last, this.outcomes)) return false;
        resolve();
        return true;
      });
    });
  }

  /** Checks of pending until() calls; each returns true once it has resolved. */
  readonly #pending: Array<() => boolean> = [];

  /** Streams whose headers have arrived and whose last frame has not, by upstream. */
  readonly #streaming = new Map<string, number>();
  #streamWaiters: Array<{ upstream: string; resolve: () => void }> = [];

  /** Resolves while a stream from `upstream` is being received (at once if one is). */
  streaming(upstream: string): Promise<void> {
    if ((this.#streaming.get(upstream) ?? 0) > 0) return Promise.resolve();
    return new Promise((resolve) => this.#streamWaiters.push({ upstream, resolve }));
  }

  #streamOpened(upstream: string | undefined): void {
    if (upstream === undefined) return;
    this.#streaming.set(upstream, (this.#streaming.get(upstream) ?? 0) + 1);
    const ready = this.#streamWaiters.filter((w) => w.upstream === upstream);
    this.#streamWaiters = this.#streamWaiters.filter((w) => w.upstream !== upstream);
    for (const w of ready) w.resolve();
  }

  #streamClosed(upstream: string | undefined): void {
    if (upstream !== undefined) this.#streaming.set(upstream, (this.#streaming.get(upstream) ?? 1) - 1);
  }

  /** Resolves once `n` more requests than now have finished. */
  more(n: number): Promise<void> {
    const target = this.outcomes.length + n;
    return this.until((_, all) => all.length >= target);
  }

  /** Lets the clients finish their current request and returns every outcome. */
  async stop(): Promise<Outcome[]> {
    this.#running = false;
    await this.#done;
    return this.outcomes;
  }

  #record(outcome: Outcome): void {
    this.outcomes.push(outcome);
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      if (this.#pending[i]!()) this.#pending.splice(i, 1);
    }
  }

  async #loop(client: number): Promise<void> {
    for (let n = 0; this.#running; n++) {
      const stream = (n + client) % 2 === 0;
      const content = `client ${client} request ${n} asks for an answer of several words`;
      this.#record(stream ? await this.#streamed(content) : await this.#plain(content));
    }
  }

  #upstream(headers: Headers): string | undefined {
    return headers.get(this.#options.upstreamHeader)?.split(',').at(-1)?.trim();
  }

  async #plain(content: string): Promise<Outcome> {
    try {
      const { data, response } = await this.#client.chat.completions
        .create({ model: this.#options.model, messages: [{ role: 'user', content }] })
        .withResponse();
      const text = data.choices[0]?.message.content;
      const ok = answers(text, content);
      return {
        stream: false,
        ok,
        status: response.status,
        upstream: this.#upstream(response.headers),
        headersAt: performance.now(),
        ...(ok ? {} : { error: `answer ${JSON.stringify(text)}` }),
      };
    } catch (error) {
      return failed(false, error, undefined, undefined);
    }
  }

  async #streamed(content: string): Promise<Outcome> {
    let upstream: string | undefined;
    let headersAt: number | undefined;
    try {
      const { data, response } = await this.#client.chat.completions
        .create({
          model: this.#options.model,
          messages: [{ role: 'user', content }],
          stream: true,
          stream_options: { include_usage: true },
        })
        .withResponse();
      headersAt = performance.now();
      upstream = this.#upstream(response.headers);
      this.#streamOpened(upstream);
      let text = '';
      let finish: string | null | undefined;
      let usage = false;
      try {
        for await (const chunk of data) {
          text += chunk.choices[0]?.delta.content ?? '';
          finish = chunk.choices[0]?.finish_reason ?? finish;
          if (chunk.usage) usage = true;
        }
      } finally {
        this.#streamClosed(upstream);
      }
      const ok = answers(text, content) && finish === 'stop' && usage;
      return {
        stream: true,
        ok,
        status: response.status,
        upstream,
        headersAt,
        ...(ok ? {} : { error: `stream ended early: ${JSON.stringify({ text, finish, usage })}` }),
      };
    } catch (error) {
      return failed(true, error, upstream, headersAt);
    }
  }
}

/** The gateway's mock provider answers "Mock reply to: <the prompt>": the whole prompt must come back. */
function answers(text: string | null | undefined, content: string): boolean {
  return typeof text === 'string' && text.endsWith(content);
}

function failed(
  stream: boolean,
  error: unknown,
  upstream: string | undefined,
  headersAt: number | undefined,
): Outcome {
  const status = error instanceof OpenAI.APIError && typeof error.status === 'number' ? error.status : 0;
  return {
    stream,
    ok: false,
    status: headersAt === undefined ? status : 200,
    upstream,
    headersAt,
    error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
  };
}
