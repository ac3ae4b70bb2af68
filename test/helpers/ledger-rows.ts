/** Ledger rows for tests of the ledger itself: complete, distinct, overridable. */
import type { LedgerRow } from '../../src/ledger/usage-ledger.ts';

let sequence = 0;

/** A successful attempt's row with a fresh `req_<n>` id (or the id prefix given) and a distinct time. */
export function sampleLedgerRow(overrides: Partial<LedgerRow> = {}, idPrefix = 'req'): LedgerRow {
  sequence++;
  return {
    requestId: `${idPrefix}_${sequence}`,
    attempt: 0,
    clientRequestId: null,
    keyId: 'key_1',
    route: '/v1/chat/completions',
    modelRequested: 'fast',
    provider: 'mock',
    modelUsed: 'mock-small',
    status: 'ok',
    httpStatus: 200,
    errorCode: null,
    stream: false,
    promptTokens: 12,
    completionTokens: 34,
    cachedTokens: 0,
    reasoningTokens: 0,
    usageSource: 'upstream',
    latencyMs: 12.5,
    ttftMs: null,
    cacheStatus: 'miss',
    costMicros: 1234,
    createdAt: 1_700_000_000_000 + sequence,
    ...overrides,
  };
}
