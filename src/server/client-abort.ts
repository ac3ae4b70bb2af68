/**
 * A signal that aborts when the client goes away before its answer is
 * complete, so the upstream call is cancelled and nobody pays for tokens no
 * one reads. One rule for every route that calls an upstream.
 */
import { ClientClosedError } from '../core/errors.ts';
import type { GatewayReply } from './exchange.ts';

export function abortOnClientClose(reply: GatewayReply): AbortSignal {
  const controller = new AbortController();
  const response = reply.raw;
  // `on`, not `once` (no wrapper per request): a response emits 'close' exactly once.
  response.on('close', () => {
    if (!response.writableFinished) controller.abort(new ClientClosedError());
  });
  return controller.signal;
}
