/**
 * A whole JSON answer, read push-style (upstream-call.ts): body chunks are
 * collected as undici's parser delivers them (bounded by
 * MAX_UPSTREAM_BODY_BYTES) and parsed once the body ended. A non-2xx answer
 * is thrown as the adapter maps it; a 2xx whose body is not JSON is a bad
 * upstream response.
 */
import type { Dispatcher } from 'undici';
import { GatewayError } from '../core/errors.ts';
import { MAX_UPSTREAM_BODY_BYTES, type UpstreamErrorMapper } from './transport-error.ts';
import { dispatchCall, type ResponseHeaders, UpstreamCall, type UpstreamPost } from './upstream-call.ts';

/** A 2xx answer: its parsed body, the text it was parsed from, and its headers. */
export interface JsonAnswerValue {
  value: unknown;
  text: string;
  headers: ResponseHeaders;
}

/** POSTs through `dispatcher`; resolves with the parsed 2xx body, rejects with the mapped error. */
export function postForJson(
  dispatcher: Dispatcher,
  post: UpstreamPost,
  mapError: UpstreamErrorMapper,
): Promise<JsonAnswerValue> {
  const answer = new JsonAnswer(post, mapError);
  dispatchCall(dispatcher, post, answer);
  return answer.value;
}

class JsonAnswer extends UpstreamCall {
  readonly #settle = Promise.withResolvers<JsonAnswerValue>();
  readonly value = this.#settle.promise;
  #headers: ResponseHeaders = {};
  #chunks: Buffer[] = [];
  #size = 0;

  constructor(post: UpstreamPost, mapError: UpstreamErrorMapper) {
    super(post.ctx, mapError);
  }

  protected refusalStatus(statusCode: number): number | undefined {
    return statusCode >= 200 && statusCode < 300 ? undefined : statusCode;
  }

  protected accepted(headers: ResponseHeaders): void {
    this.#headers = headers;
  }

  protected body(chunk: Buffer): boolean {
    this.#size += chunk.length;
    if (this.#size > MAX_UPSTREAM_BODY_BYTES) {
      this.abortCall(new GatewayError('upstream_bad_response', 'Upstream response too large'));
      return false;
    }
    this.#chunks.push(chunk);
    return true;
  }

  protected ended(): void {
    this.finish();
    const chunks = this.#chunks;
    const text = chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      this.#settle.reject(
        new GatewayError('upstream_bad_response', 'Upstream returned a body that is not valid JSON'),
      );
      return;
    }
    this.#settle.resolve({ value, text, headers: this.#headers });
  }

  protected failed(error: unknown): void {
    this.#settle.reject(error);
  }
}
