/**
 * A readiness probe, read push-style (upstream-call.ts): a GET that spends no
 * tokens; its body is drained unread, and a status at or above `failFrom` is
 * thrown as the adapter maps it (with the body it came with).
 */
import type { Dispatcher } from 'undici';
import type { UpstreamErrorMapper } from './transport-error.ts';
import { dispatchCall, UpstreamCall, type UpstreamPost } from './upstream-call.ts';

/** GETs `probe.path`; resolves once the answer ended below `failFrom`, rejects with the mapped error otherwise. */
export function runProbe(
  dispatcher: Dispatcher,
  probe: UpstreamPost,
  failFrom: number,
  mapError: UpstreamErrorMapper,
): Promise<void> {
  const call = new ProbeCall(probe, failFrom, mapError);
  dispatchCall(dispatcher, probe, call);
  return call.done;
}

class ProbeCall extends UpstreamCall {
  readonly #settle = Promise.withResolvers<void>();
  readonly done = this.#settle.promise;
  readonly #failFrom: number;

  constructor(probe: UpstreamPost, failFrom: number, mapError: UpstreamErrorMapper) {
    super(probe.ctx, mapError);
    this.#failFrom = failFrom;
  }

  protected refusalStatus(statusCode: number): number | undefined {
    return statusCode >= this.#failFrom ? statusCode : undefined;
  }

  protected accepted(): void {}

  protected body(): boolean {
    return true;
  }

  protected ended(): void {
    this.finish();
    this.#settle.resolve();
  }

  protected failed(error: unknown): void {
    this.#settle.reject(error);
  }
}
