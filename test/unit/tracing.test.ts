/**
 * The tracing facade without a gateway: off means one shared no-op span and
 * nothing loaded; the sampler follows OTEL_TRACES_SAMPLER(_ARG) as the
 * specification names them; attribute names are the semantic conventions'.
 */
import assert from 'node:assert/strict';
import { registerHooks } from 'node:module';
import { describe, test } from 'node:test';
import * as semconv from '@opentelemetry/semantic-conventions';
import * as incubating from '@opentelemetry/semantic-conventions/incubating';
import { ATTR, genAiOperation, genAiProviderName } from '../../src/observability/trace-attributes.ts';
import { samplerFromEnv } from '../../src/observability/trace-sampler.ts';
import {
  createTracing,
  endWhenSettled,
  failAndEnd,
  NO_TRACING,
  NOOP_SPAN,
  tracingRequested,
} from '../../src/observability/tracing.ts';

describe('tracing off', () => {
  test('on only when an OTLP endpoint (all signals or traces) is set', () => {
    assert.equal(tracingRequested({}), false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }), true);
    assert.equal(
      tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }),
      true,
    );
  });

  test('without an endpoint createTracing is NO_TRACING, and the SDK is never loaded', async () => {
    delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    delete process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'];
    const imported: string[] = [];
    const hooks = registerHooks({
      resolve(specifier, context, next) {
        imported.push(specifier);
        return next(specifier, context);
      },
    });
    try {
      const tracing = await createTracing({
        captureContent: true,
        warn: () => assert.fail('no warning expected'),
      });
      assert.equal(tracing, NO_TRACING);
      assert.equal(tracing.captureContent, false);
      assert.equal(imported.length, 0, imported.join(', '));
      // The hook does see the SDK being loaded when tracing is on (so the check above can fail).
      process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:1';
      const on = await createTracing({ captureContent: false, warn: () => {} });
      await on.shutdown();
      assert.ok(imported.includes('./otel-tracing.ts'), imported.join(', '));
    } finally {
      hooks.deregister();
      delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
    }
  });

  test('OTEL_SDK_DISABLED=true turns it off even with an endpoint', async () => {
    process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:1';
    process.env['OTEL_SDK_DISABLED'] = 'true';
    try {
      assert.equal(await createTracing({ captureContent: false, warn: () => {} }), NO_TRACING);
    } finally {
      delete process.env['OTEL_EXPORTER_OTLP_ENDPOINT'];
      delete process.env['OTEL_SDK_DISABLED'];
    }
  });

  test('the no-op span is one shared object: children, attributes and ends cost nothing', () => {
    const request = NO_TRACING.startRequest('POST', '/v1/chat/completions', {});
    assert.equal(request, NOOP_SPAN);
    assert.equal(request.child('auth'), NOOP_SPAN);
    assert.equal(request.child('chat gpt-4o', 'client').child('x'), NOOP_SPAN);
    assert.equal(request.recording, false);
    assert.equal(request.traceId, '');
    assert.equal(request.outboundHeaders(), undefined);
    request.set('a', 1);
    request.fail('upstream_error');
    request.end();
    assert.ok(Object.isFrozen(NOOP_SPAN));
    const pending = Promise.resolve(1);
    assert.equal(endWhenSettled(NOOP_SPAN, pending), pending, 'nothing wraps the promise when off');
    failAndEnd(NOOP_SPAN, new Error('x'));
  });
});

describe('OTEL_TRACES_SAMPLER', () => {
  const sampler = (env: NodeJS.ProcessEnv) => {
    const warnings: string[] = [];
    const chosen = String(samplerFromEnv(env, (w) => warnings.push(w)));
    return { chosen, warnings };
  };

  test('default: parent-based, always on at the root', () => {
    assert.match(sampler({}).chosen, /^ParentBased\{root=AlwaysOnSampler,/);
  });

  test('every name the specification defines (jaeger and x-ray aside)', () => {
    assert.equal(sampler({ OTEL_TRACES_SAMPLER: 'always_on' }).chosen, 'AlwaysOnSampler');
    assert.equal(sampler({ OTEL_TRACES_SAMPLER: 'always_off' }).chosen, 'AlwaysOffSampler');
    assert.equal(
      sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }).chosen,
      'TraceIdRatioBased{0.5}',
    );
    assert.match(
      sampler({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).chosen,
      /^ParentBased\{root=AlwaysOffSampler,/,
    );
    const ratio = sampler({
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    });
    assert.match(ratio.chosen, /^ParentBased\{root=TraceIdRatioBased\{0.25\},/);
    assert.match(
      ratio.chosen,
      /remoteParentSampled=AlwaysOnSampler, remoteParentNotSampled=AlwaysOffSampler/,
    );
    assert.deepEqual(ratio.warnings, []);
  });

  test('a ratio without an argument is 1; a bad argument or an unknown sampler is warned about', () => {
    assert.equal(sampler({ OTEL_TRACES_SAMPLER: 'traceidratio' }).chosen, 'TraceIdRatioBased{1}');
    const bad = sampler({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' });
    assert.equal(bad.chosen, 'TraceIdRatioBased{1}');
    assert.match(bad.warnings[0] ?? '', /OTEL_TRACES_SAMPLER_ARG=1.5/);
    const unknown = sampler({ OTEL_TRACES_SAMPLER: 'jaeger_remote' });
    assert.match(unknown.chosen, /^ParentBased\{root=AlwaysOnSampler,/);
    assert.match(unknown.warnings[0] ?? '', /jaeger_remote is not supported/);
  });
});

describe('attribute names', () => {
  test('are the semantic conventions’ (GenAI ones copied from the incubating entry)', () => {
    assert.equal(ATTR.httpRequestMethod, semconv.ATTR_HTTP_REQUEST_METHOD);
    assert.equal(ATTR.httpRoute, semconv.ATTR_HTTP_ROUTE);
    assert.equal(ATTR.httpResponseStatusCode, semconv.ATTR_HTTP_RESPONSE_STATUS_CODE);
    assert.equal(ATTR.errorType, semconv.ATTR_ERROR_TYPE);
    assert.equal(ATTR.genAiOperationName, incubating.ATTR_GEN_AI_OPERATION_NAME);
    assert.equal(ATTR.genAiProviderName, incubating.ATTR_GEN_AI_PROVIDER_NAME);
    assert.equal(ATTR.genAiRequestModel, incubating.ATTR_GEN_AI_REQUEST_MODEL);
    assert.equal(ATTR.genAiRequestStream, incubating.ATTR_GEN_AI_REQUEST_STREAM);
    assert.equal(ATTR.genAiUsageInputTokens, incubating.ATTR_GEN_AI_USAGE_INPUT_TOKENS);
    assert.equal(ATTR.genAiUsageOutputTokens, incubating.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS);
    assert.equal(ATTR.genAiUsageCacheReadInputTokens, incubating.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS);
    assert.equal(ATTR.genAiInputMessages, incubating.ATTR_GEN_AI_INPUT_MESSAGES);
  });

  test('provider names are the well-known values; operations follow the route', () => {
    assert.equal(genAiProviderName('openai'), incubating.GEN_AI_PROVIDER_NAME_VALUE_OPENAI);
    assert.equal(genAiProviderName('anthropic'), incubating.GEN_AI_PROVIDER_NAME_VALUE_ANTHROPIC);
    assert.equal(genAiProviderName('gemini'), incubating.GEN_AI_PROVIDER_NAME_VALUE_GCP_GEMINI);
    assert.equal(genAiProviderName('azure'), incubating.GEN_AI_PROVIDER_NAME_VALUE_AZURE_AI_OPENAI);
    assert.equal(genAiProviderName('mistral'), incubating.GEN_AI_PROVIDER_NAME_VALUE_MISTRAL_AI);
    assert.equal(genAiProviderName('ollama'), 'ollama');
    assert.equal(genAiOperation('/v1/chat/completions'), incubating.GEN_AI_OPERATION_NAME_VALUE_CHAT);
    assert.equal(genAiOperation('/v1/messages'), 'chat');
    assert.equal(genAiOperation('/v1/embeddings'), incubating.GEN_AI_OPERATION_NAME_VALUE_EMBEDDINGS);
  });
});
