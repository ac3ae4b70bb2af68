/**
 * The OpenTelemetry side of tracing.ts: the official SDK's TracerProvider
 * with a BatchSpanProcessor and the OTLP/HTTP exporter, configured by the
 * standard variables. Loaded only when tracing is on.
 *
 * Nothing global is touched: no global tracer provider, no context manager,
 * no patched http or undici. Spans are parented explicitly (the request span
 * is handed down), which costs nothing on requests that are not traced and
 * cannot attach a span to the wrong request through async context.
 *
 * Read from the environment:
 * - the exporter (by the exporter itself): `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`,
 *   `_HEADERS`, `_TIMEOUT`, `_COMPRESSION`, certificates. It speaks http/json;
 *   another `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` is warned about.
 * - the resource: `OTEL_SERVICE_NAME` (default `switchyard`), `OTEL_RESOURCE_ATTRIBUTES`;
 * - the sampler: `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` (trace-sampler.ts);
 * - the batch processor: `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT`,
 *   `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`;
 * - `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`):
 *   default 65,536 characters here (the SDK's is unlimited), which only a captured prompt reaches.
 */
import type { IncomingHttpHeaders } from 'node:http';
import {
  type Context,
  DiagLogLevel,
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  resourceAttributesEnvDetector,
  resourceFromAttributes,
  serviceNameEnvDetector,
} from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { ATTR } from './trace-attributes.ts';
import { samplerFromEnv } from './trace-sampler.ts';
import {
  NOOP_SPAN,
  type TraceAttributeValue,
  type TraceSpan,
  type TraceSpanKind,
  type Tracing,
  type TracingOptions,
} from './tracing.ts';

const propagator = new W3CTraceContextPropagator();

export class OtelTracing implements Tracing {
  readonly enabled = true;
  readonly captureContent: boolean;
  readonly tracer: Tracer;
  readonly #provider: TracerProvider;
  #stopping: Promise<void> | undefined;

  constructor(env: NodeJS.ProcessEnv, options: TracingOptions) {
    this.captureContent = options.captureContent;
    // The SDK and exporter report failures (an unreachable collector) through `diag`.
    diag.setLogger(
      {
        error: (message) => options.warn(`tracing: ${message}`),
        warn: (message) => options.warn(`tracing: ${message}`),
        info: () => {},
        debug: () => {},
        verbose: () => {},
      },
      { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
    );
    const protocol = env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'];
    if (protocol !== undefined && protocol.trim() !== '' && protocol.trim() !== 'http/json') {
      options.warn(
        `tracing: OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported; spans are sent as http/json`,
      );
    }
    const resource = defaultResource()
      .merge(
        resourceFromAttributes({
          'service.name': 'switchyard',
          ...(options.serviceVersion ? { 'service.version': options.serviceVersion } : {}),
        }),
      )
      // The environment's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
      .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }));
    this.#provider = new TracerProvider({
      resource,
      // Only a captured prompt can be long: one oversized request must not make an export of megabytes.
      spanLimits: {
        attributeValueLengthLimit:
          positiveNumber(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ??
          positiveNumber(env, 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT') ??
          DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT,
      },
      sampler: samplerFromEnv(env, options.warn),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter: new OTLPTraceExporter(),
          ...positive(env, 'OTEL_BSP_SCHEDULE_DELAY', 'scheduledDelayMillis'),
          ...positive(env, 'OTEL_BSP_EXPORT_TIMEOUT', 'exportTimeoutMillis'),
          ...positive(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 'maxQueueSize'),
          ...positive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 'maxExportBatchSize'),
        }),
      ],
    });
    this.tracer = this.#provider.getTracer('switchyard', options.serviceVersion);
  }

  startRequest(method: string, route: string, headers: IncomingHttpHeaders): TraceSpan {
    const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
    const span = this.tracer.startSpan(
      `${method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { [ATTR.httpRequestMethod]: method, [ATTR.httpRoute]: route } },
      parent,
    );
    return new OtelSpan(span, this.tracer);
  }

  /** Exports what is queued (spans of requests that finished while draining included), then stops. */
  shutdown(): Promise<void> {
    this.#stopping ??= this.#provider.shutdown().catch(() => undefined);
    return this.#stopping;
  }
}

class OtelSpan implements TraceSpan {
  readonly recording: boolean;
  readonly #span: Span;
  readonly #tracer: Tracer;
  #context: Context | undefined;
  #ended = false;

  constructor(span: Span, tracer: Tracer) {
    this.#span = span;
    this.#tracer = tracer;
    this.recording = span.isRecording();
  }

  get traceId(): string {
    return this.#span.spanContext().traceId;
  }

  /** This span as a parent context (built once: a request's children share it). */
  #asParent(): Context {
    this.#context ??= trace.setSpan(ROOT_CONTEXT, this.#span);
    return this.#context;
  }

  child(name: string, kind: TraceSpanKind = 'internal'): TraceSpan {
    // A trace the sampler left out stays out for every sampler supported here (parent-based ones
    // follow the parent; a trace-id ratio decides the same for the same trace id): its children
    // would never record, so none is made. Its upstream still gets the trace (the request span's).
    if (!this.recording) return NOOP_SPAN;
    const span = this.#tracer.startSpan(
      name,
      { kind: kind === 'client' ? SpanKind.CLIENT : SpanKind.INTERNAL },
      this.#asParent(),
    );
    return new OtelSpan(span, this.#tracer);
  }

  set(name: string, value: TraceAttributeValue | null | undefined): void {
    if (value !== null && value !== undefined) this.#span.setAttribute(name, value);
  }

  fail(errorType: string, message?: string): void {
    this.#span.setAttribute(ATTR.errorType, errorType);
    this.#span.setStatus(
      message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message },
    );
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#span.end();
  }

  outboundHeaders(): Readonly<Record<string, string>> {
    const carrier: Record<string, string> = {};
    propagator.inject(this.#asParent(), carrier, defaultTextMapSetter);
    return carrier;
  }
}

/** Characters kept of an attribute's value unless OTEL_[SPAN_]ATTRIBUTE_VALUE_LENGTH_LIMIT says otherwise. */
const DEFAULT_ATTRIBUTE_VALUE_LENGTH_LIMIT = 65_536;

/** The variable as a positive integer, or undefined. */
function positiveNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = Number(env[name]);
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** `{ [option]: n }` when the variable holds a positive integer, else nothing (the SDK's default). */
function positive(env: NodeJS.ProcessEnv, name: string, option: string): Record<string, number> {
  const value = positiveNumber(env, name);
  return value === undefined ? {} : { [option]: value };
}
