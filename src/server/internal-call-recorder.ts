/**
 * The UsageRecorder of a model call the gateway makes on its own account
 * rather than as a client's request (a semantic-cache embedding, a complexity
 * judge's question): a request id of its own, a route naming what it was for,
 * billed to `key` (the master key's and keyless calls to no key).
 */
import type { AuthenticatedKey } from '../auth/key-store.ts';
import { UsageRecorder } from '../billing/usage-recorder.ts';
import { requestId } from '../util/request-id.ts';
import type { GatewayContext } from './context.ts';

export function internalCallRecorder(
  gw: Pick<GatewayContext, 'ledger' | 'metrics' | 'pricer'>,
  call: { route: string; model: string; key?: AuthenticatedKey | undefined },
): UsageRecorder {
  const { key } = call;
  return new UsageRecorder(
    gw.ledger,
    gw.metrics,
    {
      requestId: requestId(),
      clientRequestId: null,
      keyId: key === undefined || key.isMaster ? null : key.id,
      teamId: key?.teamId ?? null,
      route: call.route,
      modelRequested: call.model,
      stream: false,
    },
    gw.pricer,
  );
}
