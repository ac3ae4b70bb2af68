/**
 * The gateway's embedding micro-batching (src/dispatch/embedding-batches.ts)
 * and how a shared call is billed (src/billing/batch-recorder.ts,
 * usage-shares.ts), in-process over a scripted provider: which requests share
 * a call, that each is answered and billed its own part, and how failures
 * reach them. Batch timers are fired by the test; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageRecorder } from '../../src/billing/usage-recorder.ts';
import { apportion, shareUsage } from '../../src/billing/usage-shares.ts';
import { validateConfig } from '../../src/config/load.ts';
import { ClientClosedError, GatewayError } from '../../src/core/errors.ts';
import type { EmbeddingRequest, EmbeddingResponse } from '../../src/core/types.ts';
import { newDispatchReport } from '../../src/dispatch/dispatch.ts';
import {
  type BatchedEmbedding,
  batchableText,
  EmbeddingBatches,
} from '../../src/dispatch/embedding-batches.ts';
import type { LedgerRow } from '../../src/ledger/usage-ledger.ts';
import { MockProvider } from '../../src/providers/mock/mock-provider.ts';
import type { AttemptContext } from '../../src/providers/types.ts';
import { buildModelTable, type ModelRoute } from '../../src/routing/model-table.ts';
import { ManualTimer } from '../helpers/manual-timer.ts';

/** Answers each input with [its length, its position], in reverse order (the index must be read), and a usage total of its own. */
class ScriptedProvider extends MockProvider {
  readonly calls: EmbeddingRequest[] = [];
  /** Refuses a call when it answers an error. */
  refuse: ((inputs: string[]) => GatewayError | undefined) | undefined;
  /** Holds every call until released. */
  gate: Promise<void> | undefined;
  signals: AbortSignal[] = [];
  /** Drops the last item of every answer. */
  short = false;

  constructor() {
    super({ name: 'up' });
  }

  override async embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse> {
    this.calls.push(request);
    this.signals.push(ctx.signal);
    if (this.gate !== undefined) await this.gate;
    const inputs = request.input as string[];
    const refusal = this.refuse?.(inputs);
    if (refusal !== undefined) throw refusal;
    const data = inputs.map((text, index) => ({
      object: 'embedding' as const,
      index,
      embedding: [text.length, index],
    }));
    data.reverse();
    if (this.short) data.pop();
    const tokens = 7 * inputs.length + 3;
    return {
      object: 'list',
      data,
      model: request.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    };
  }
}

function rig(batching: Record<string, unknown> = {}) {
  const config = validateConfig({
    providers: { up: { type: 'mock' } },
    models: {
      e: {
        targets: [{ provider: 'up', model: 'emb-1' }],
        retries: { max: 0 },
        batching: { enabled: true, max_batch: 10, ...batching },
      },
      off: { targets: [{ provider: 'up', model: 'emb-1' }] },
    },
  });
  const provider = new ScriptedProvider();
  const table = buildModelTable(config, new Map([['up', provider]]));
  const route = table.get('e')!;
  const timer = new ManualTimer();
  const batches = new EmbeddingBatches({ timer });
  const rows: LedgerRow[] = [];
  let n = 0;
  /** One request, as the route makes it: its own recorder (its key, its id), report and signal. */
  const embed = (
    text: string,
    extra: Partial<EmbeddingRequest> = {},
    signal = new AbortController().signal,
    on: ModelRoute = route,
  ) => {
    n++;
    const recorder = new UsageRecorder(
      { record: (row) => rows.push(row) },
      undefined,
      {
        requestId: `req_${n}`,
        keyId: `key_${n % 2}`,
        route: '/v1/embeddings',
        modelRequested: on.name,
        stream: false,
      },
      { costMicros: (_model, usage) => (usage === undefined ? 0 : usage.prompt_tokens * 10) },
    );
    const report = newDispatchReport();
    const request: EmbeddingRequest = { model: on.name, input: text, ...extra };
    const done = batches.dispatch(on, request, batchableText(on, request)!, {
      signal,
      requestId: `req_${n}`,
      recorder,
      report,
      targets: on.targets,
    });
    return { done, recorder, report, id: `req_${n}` };
  };
  const rowsOf = (id: string) => rows.filter((r) => r.requestId === id);
  return { provider, route, table, timer, batches, embed, rows, rowsOf };
}

describe('usage shares', () => {
  test('split in proportion, in whole tokens that sum exactly to the total', () => {
    assert.deepEqual(
      apportion(10, [1, 1, 1]),
      [4, 3, 3],
      'the leftover goes to the earliest of equal remainders',
    );
    assert.deepEqual(apportion(100, [1, 3]), [25, 75]);
    assert.deepEqual(apportion(7, [0, 0]), [4, 3], 'no weight at all: equal shares');
    assert.deepEqual(apportion(5, [10, 0, 1]), [5, 0, 0]);
    assert.deepEqual(apportion(0, [3, 4]), [0, 0]);
    assert.deepEqual(apportion(9, []), []);
    for (let total = 0; total < 300; total += 7) {
      const weights = [3, 1, 4, 1, 5, 9, 2, 6];
      const shares = apportion(total, weights);
      assert.equal(
        shares.reduce((a, b) => a + b, 0),
        total,
      );
      shares.forEach((share, i) => {
        assert.ok(Math.abs(share - (total * weights[i]!) / 31) < 1);
      });
    }
    const usage = shareUsage({ prompt_tokens: 11, completion_tokens: 0, total_tokens: 11 }, [2, 1]);
    assert.deepEqual(usage, [
      { prompt_tokens: 7, completion_tokens: 0, total_tokens: 7 },
      { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 },
    ]);
  });
});

describe('which requests may share a call', () => {
  test('one string (alone or in a one-element array), batching on, no field a call could not carry', () => {
    const { table } = rig();
    const on = table.get('e')!;
    assert.equal(batchableText(on, { model: 'e', input: 'hi' }), 'hi');
    assert.equal(batchableText(on, { model: 'e', input: ['hi'], dimensions: 4, user: 'u' }), 'hi');
    assert.equal(batchableText(on, { model: 'e', input: ['a', 'b'] }), undefined);
    assert.equal(batchableText(on, { model: 'e', input: [1, 2, 3] }), undefined);
    assert.equal(batchableText(on, { model: 'e', input: [[1, 2]] }), undefined);
    assert.equal(batchableText(on, { model: 'e', input: 'hi', extra_field: true }), undefined);
    assert.equal(batchableText(table.get('off')!, { model: 'off', input: 'hi' }), undefined);
  });

  test('different dimensions or encodings never share; a call names a user only when all its requests do', async () => {
    const { provider, timer, embed } = rig();
    const all = [
      embed('a', { dimensions: 4 }),
      embed('b', { dimensions: 8 }),
      embed('c', { dimensions: 4, encoding_format: 'base64' }),
      embed('d', { dimensions: 4, user: 'ann' }),
      embed('e', { user: 'ann' }),
      embed('f', { user: 'ann' }),
      embed('g', { user: 'bob' }),
      embed('h'),
      embed('i', { dimensions: 16, user: 'ann' }),
      embed('j', { dimensions: 16, user: 'ann' }),
    ];
    timer.fireAll();
    await Promise.all(all.map((r) => r.done));
    const calls = provider.calls.map((c) => ({
      input: c.input,
      dimensions: c.dimensions,
      encoding_format: c.encoding_format,
      user: c.user,
    }));
    assert.deepEqual(
      calls.sort((x, y) => String(x.input).localeCompare(String(y.input))),
      [
        { input: ['a', 'd'], dimensions: 4, encoding_format: undefined, user: undefined },
        { input: ['b'], dimensions: 8, encoding_format: undefined, user: undefined },
        { input: ['c'], dimensions: 4, encoding_format: 'base64', user: undefined },
        { input: ['e', 'f', 'g', 'h'], dimensions: undefined, encoding_format: undefined, user: undefined },
        { input: ['i', 'j'], dimensions: 16, encoding_format: undefined, user: 'ann' },
      ],
    );
  });
});

describe('a shared call', () => {
  test('answers each request its own vector and bills it its share, in its own rows', async () => {
    const { provider, timer, embed, rowsOf } = rig();
    const texts = ['short', 'a somewhat longer text to embed', 'mid-sized text', 'x'];
    const requests = texts.map((t) => embed(t));
    assert.equal(provider.calls.length, 0, 'waits for company');
    timer.fireAll();
    const served: BatchedEmbedding[] = await Promise.all(requests.map((r) => r.done));
    assert.equal(provider.calls.length, 1);
    assert.deepEqual(provider.calls[0]?.input, texts);
    const upstreamTotal = 7 * texts.length + 3;
    let billed = 0;
    served.forEach(({ response, attempt }, i) => {
      assert.deepEqual(response.data, [{ object: 'embedding', index: 0, embedding: [texts[i]!.length, i] }]);
      const rows = rowsOf(requests[i]!.id);
      assert.equal(rows.length, 1, 'one row per request');
      const row = rows[0]!;
      assert.equal(row.status, 'ok');
      assert.equal(row.keyId, `key_${(i + 1) % 2}`, 'under its own key');
      assert.equal(row.attempt, 1);
      assert.equal(row.usageSource, 'upstream');
      assert.equal(response.usage.prompt_tokens, row.promptTokens, 'the answer says what the row bills');
      assert.equal(row.costMicros, row.promptTokens * 10, 'priced from its own share');
      assert.equal(requests[i]!.recorder.costMicros, row.costMicros);
      assert.equal(requests[i]!.recorder.tokens, row.promptTokens, 'what its limits are settled with');
      assert.equal(attempt.provider, 'up');
      assert.equal(requests[i]!.report.attempts, 1);
      assert.equal(requests[i]!.report.target, 'up/emb-1');
      billed += row.promptTokens;
    });
    assert.equal(billed, upstreamTotal, 'the shares add up to what the upstream billed');
    const [short, long] = [rowsOf(requests[0]!.id)[0]!, rowsOf(requests[1]!.id)[0]!];
    assert.ok(long.promptTokens > short.promptTokens, 'a longer input bears more of the bill');
  });

  test('a full batch leaves at once; never more than max_batch inputs a call', async () => {
    const { provider, timer, embed } = rig({ max_batch: 3 });
    const requests = Array.from({ length: 7 }, (_, i) => embed(`text ${i}`));
    assert.deepEqual(
      provider.calls.map((c) => (c.input as string[]).length),
      [3, 3],
    );
    timer.fireAll();
    const served = await Promise.all(requests.map((r) => r.done));
    assert.deepEqual(
      provider.calls.map((c) => (c.input as string[]).length),
      [3, 3, 1],
    );
    served.forEach(({ response }, i) => {
      assert.equal((response.data[0]!.embedding as number[])[0], `text ${i}`.length);
    });
  });

  test('an input refused alone fails its request only: the others are answered one at a time', async () => {
    const { provider, timer, embed, rowsOf } = rig();
    provider.refuse = (inputs) =>
      inputs.includes('bad input')
        ? new GatewayError('upstream_client_error', 'Invalid input', { status: 400, param: 'input' })
        : undefined;
    const requests = ['alpha', 'bad input', 'gamma'].map((t) => embed(t));
    timer.fireAll();
    const outcomes = await Promise.allSettled(requests.map((r) => r.done));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.equal((outcomes[1] as PromiseRejectedResult).reason.code, 'upstream_client_error');
    assert.deepEqual(
      provider.calls.map((c) => c.input),
      [['alpha', 'bad input', 'gamma'], ['alpha'], ['bad input'], ['gamma']],
    );
    for (const [i, final] of [
      [0, 'ok'],
      [1, 'error'],
      [2, 'ok'],
    ] as const) {
      assert.deepEqual(
        rowsOf(requests[i]!.id).map((r) => [r.attempt, r.status]),
        [
          [1, 'error'],
          [2, final],
        ],
        'each request has a row for the shared call and one for its own',
      );
    }
    assert.equal(requests[0]!.report.attempts, 2, 'its headers count both calls');
    const alone = rowsOf(requests[0]!.id)[1]!;
    assert.equal(alone.promptTokens, 7 + 3, 'alone, it bears the whole of its own call');
  });

  test('a refusal of a field every request shares is not retried one at a time', async () => {
    const { provider, timer, embed } = rig();
    const refusal = new GatewayError('upstream_client_error', 'bad dimensions', {
      status: 400,
      param: 'dimensions',
    });
    provider.refuse = () => refusal;
    const requests = ['a', 'b'].map((t) => embed(t, { dimensions: 3 }));
    timer.fireAll();
    for (const r of requests) await assert.rejects(r.done, (e) => e === refusal);
    assert.equal(provider.calls.length, 1);
  });

  test('a failed call fails every request in it with its error, each with its own failed row', async () => {
    const { provider, timer, embed, rowsOf } = rig();
    const down = new GatewayError('upstream_error', 'Upstream returned HTTP 500', { upstreamStatus: 500 });
    provider.refuse = () => down;
    const requests = ['a', 'b', 'c'].map((t) => embed(t));
    timer.fireAll();
    for (const r of requests) {
      await assert.rejects(r.done, (e) => e === down);
      assert.deepEqual(
        rowsOf(r.id).map((row) => [row.status, row.errorCode, row.promptTokens]),
        [['error', 'upstream_error', 0]],
      );
      assert.equal(r.report.attempts, 1, 'its headers say how the call went');
    }
    assert.equal(provider.calls.length, 1);
  });

  test('an answer that cannot be matched to its inputs fails them all', async () => {
    const { provider, timer, embed } = rig();
    provider.short = true;
    const requests = ['a', 'b', 'c'].map((t) => embed(t));
    timer.fireAll();
    for (const r of requests) await assert.rejects(r.done, { code: 'upstream_bad_response' });
  });

  test('a request whose client leaves mid-call is billed client_closed; the others are answered', async () => {
    const { provider, timer, embed, rowsOf } = rig();
    const { promise: gate, resolve: open } = Promise.withResolvers<void>();
    provider.gate = gate;
    const leaving = new AbortController();
    const gone = embed('first text', {}, leaving.signal);
    const stays = embed('second text');
    timer.fireAll();
    assert.equal(provider.calls.length, 1);
    leaving.abort(new ClientClosedError());
    await assert.rejects(gone.done, ClientClosedError);
    assert.equal(provider.signals[0]!.aborted, false, 'the call goes on for the other request');
    open();
    const served = await stays.done;
    assert.equal((served.response.data[0]!.embedding as number[])[0], 'second text'.length);
    const [goneRow] = rowsOf(gone.id);
    const [staysRow] = rowsOf(stays.id);
    assert.equal(goneRow?.status, 'client_closed');
    assert.equal(staysRow?.status, 'ok');
    assert.equal(goneRow!.promptTokens + staysRow!.promptTokens, 7 * 2 + 3, 'still billed its share');
  });

  test('a request whose client leaves before its call does is taken out; when all leave, none is made', async () => {
    const { provider, timer, embed, rowsOf } = rig();
    const leaving = new AbortController();
    const gone = embed('first', {}, leaving.signal);
    const stays = embed('second');
    leaving.abort(new ClientClosedError());
    await assert.rejects(gone.done, ClientClosedError);
    timer.fireAll();
    await stays.done;
    assert.deepEqual(provider.calls[0]?.input, ['second']);
    assert.deepEqual(rowsOf(gone.id), [], 'nothing was sent for it');

    const all = new AbortController();
    const both = [embed('x', {}, all.signal), embed('y', {}, all.signal)];
    all.abort(new ClientClosedError());
    for (const r of both) await assert.rejects(r.done, ClientClosedError);
    timer.fireAll();
    assert.equal(provider.calls.length, 1);
  });
});
