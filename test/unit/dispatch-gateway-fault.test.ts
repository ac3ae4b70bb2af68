/**
 * Only failures the upstream itself produced count against a target: an
 * exception thrown inside the gateway during an attempt (a bug, a stack
 * overflow while serializing) is a 500 `internal_error`, not retried, never a
 * breaker failure, and its ledger row does not blame the provider.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageRecorder } from '../../src/billing/usage-recorder.ts';
import { validateConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/core/errors.ts';
import type { ChatCompletion, ChatRequest } from '../../src/core/types.ts';
import { dispatchChat, newDispatchReport } from '../../src/dispatch/dispatch.ts';
import type { LedgerRow, UsageLedger } from '../../src/ledger/usage-ledger.ts';
import { GatewayMetrics } from '../../src/observability/metrics.ts';
import { mapTransportError } from '../../src/providers/http.ts';
import type { ProviderAdapter } from '../../src/providers/types.ts';
import { Resilience } from '../../src/resilience/resilience.ts';
import { buildModelTable } from '../../src/routing/model-table.ts';

/** An adapter whose own code fails before anything is sent, as JSON.stringify on a too-deep body did. */
class FaultyAdapter implements ProviderAdapter {
  readonly name = 'faulty';
  readonly type = 'mock';
  calls = 0;
  chat(): Promise<ChatCompletion> {
    this.calls++;
    return Promise.reject(new RangeError('Maximum call stack size exceeded'));
  }
  streamChat(): never {
    throw new Error('not used');
  }
  embed(): never {
    throw new Error('not used');
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function rig() {
  const config = validateConfig({
    providers: { faulty: { type: 'mock' } },
    models: {
      m: {
        targets: [
          { provider: 'faulty', model: 'a' },
          { provider: 'faulty', model: 'b' },
        ],
        retries: { max: 2, base_ms: 1 },
        circuit_breaker: { enabled: true, failure_threshold: 1, min_requests: 1 },
      },
    },
  });
  const adapter = new FaultyAdapter();
  const models = buildModelTable(config, new Map([['faulty', adapter]]));
  const rows: LedgerRow[] = [];
  const ledger = { record: (row: LedgerRow) => rows.push(row) } as unknown as UsageLedger;
  const metrics = new GatewayMetrics(models.keys(), () => 0);
  return { adapter, models, rows, ledger, metrics, resilience: new Resilience(config, models) };
}

const REQUEST: ChatRequest = { model: 'm', messages: [{ role: 'user', content: 'hi' }] };

describe('a gateway-side exception during an attempt', () => {
  test('is internal_error, tried once, and opens no breaker however often it happens', async () => {
    const r = rig();
    const route = r.models.get('m')!;
    for (let i = 0; i < 10; i++) {
      const recorder = new UsageRecorder(r.ledger, r.metrics, {
        requestId: `req-${i}`,
        keyId: 'k',
        route: '/v1/chat/completions',
        modelRequested: 'm',
        stream: false,
      });
      await assert.rejects(
        dispatchChat(route, REQUEST, {
          signal: new AbortController().signal,
          requestId: `req-${i}`,
          recorder,
          resilience: r.resilience,
          report: newDispatchReport(),
        }),
        (error: unknown) => GatewayError.is(error) && error.code === 'internal_error' && error.status === 500,
      );
    }
    assert.equal(r.adapter.calls, 10, 'one attempt per request: not retried, no fallback');
    for (const id of ['faulty/a', 'faulty/b']) assert.equal(r.resilience.breaker(id)?.state, 'closed', id);
    assert.equal(r.rows.length, 10);
    for (const row of r.rows) {
      assert.equal(row.errorCode, 'internal_error');
      assert.equal(row.httpStatus, 500);
    }
  });

  test('the transport mapper passes non-transport errors on instead of calling them upstream errors', () => {
    const signal = new AbortController().signal;
    const bug = new TypeError('cannot read properties of undefined');
    assert.equal(mapTransportError(bug, signal), bug);
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const mapped = mapTransportError(reset, signal);
    assert.ok(GatewayError.is(mapped) && mapped.code === 'upstream_error');
  });
});
