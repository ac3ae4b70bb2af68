/**
 * Tracing as the rest of the gateway sees it: a request span, child spans, a
 * few attributes, and the W3C headers that carry a span to an upstream.
 *
 * OpenTelemetry itself (the SDK, the OTLP/HTTP exporter) lives in
 * otel-tracing.ts and is loaded only when tracing is on, which is when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
 * When it is off every call lands on NOOP_SPAN, one shared object whose
 * methods do nothing and return it: a request allocates nothing for tracing,
 * and the SDK's modules are never read (no memory, no start-up cost).
 *
 * Callers that would build something only for a span (a JSON string, a
 * computed name) check `span.recording` first.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type TraceAttributeValue = string | number | boolean;

/** The span kinds the gateway uses: its own steps, and calls it makes to an upstream. */
export type TraceSpanKind = 'internal' | 'client';

export interface TraceSpan {
  /** False when nothing is recorded (tracing off, or a trace the sampler left out): build no attributes. */
  readonly recording: boolean;
  /** The trace's id (32 hex digits); '' when tracing is off. */
  readonly traceId: string;
  /** A child of this span, started now. */
  child(name: string, kind?: TraceSpanKind): TraceSpan;
  /** Sets an attribute; null and undefined are left out. */
  set(name: string, value: TraceAttributeValue | null | undefined): void;
  /** Marks the span failed: status ERROR with `message`, and `error.type` (an error code, never free text). */
  fail(errorType: string, message?: string): void;
  /** Ends the span (later calls are ignored). */
  end(): void;
  /**
   * `traceparent` (and `tracestate`) naming this span, for an outbound call:
   * the upstream's spans become its children. Undefined when tracing is off.
   */
  outboundHeaders(): Readonly<Record<string, string>> | undefined;
}

export interface Tracing {
  readonly enabled: boolean;
  /** Prompt text on the request span (`gen_ai.input.messages`): off unless the operator turned it on. */
  readonly captureContent: boolean;
  /**
   * The span of one inbound request (`<method> <route>`, kind server): a
   * child of the client's trace when its `traceparent` is valid, else a new
   * trace's root.
   */
  startRequest(method: string, route: string, headers: IncomingHttpHeaders): TraceSpan;
  /** Exports the spans still queued, then stops (shutdown; idempotent). */
  shutdown(): Promise<void>;
}

function noopChild(): TraceSpan {
  return NOOP_SPAN;
}
function nothing(): void {}
function noHeaders(): undefined {
  return undefined;
}

/** The span of everything when tracing is off: shared, immutable, free. */
export const NOOP_SPAN: TraceSpan = Object.freeze({
  recording: false,
  traceId: '',
  child: noopChild,
  set: nothing,
  fail: nothing,
  end: nothing,
  outboundHeaders: noHeaders,
});

/** Tracing off. */
export const NO_TRACING: Tracing = Object.freeze({
  enabled: false,
  captureContent: false,
  startRequest: noopChild,
  shutdown: () => Promise.resolve(),
});

/** Whether the environment asks for traces: an OTLP endpoint is set (for all signals, or traces). */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  return nonEmpty(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) || nonEmpty(env['OTEL_EXPORTER_OTLP_ENDPOINT']);
}

export interface TracingOptions {
  /** `tracing.capture_content` in config; `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` also turns it on. */
  captureContent: boolean;
  /** `service.version` on every span's resource. */
  serviceVersion?: string;
  /** Told about configuration problems (an unknown sampler, a protocol the exporter cannot speak). */
  warn: (message: string) => void;
}

/**
 * Tracing configured by the standard `OTEL_*` variables (read from
 * process.env, as the OpenTelemetry SDK and exporter do): NO_TRACING unless
 * an OTLP endpoint is set, or `OTEL_SDK_DISABLED=true`.
 */
export async function createTracing(options: TracingOptions): Promise<Tracing> {
  const env = process.env;
  if (!tracingRequested(env) || env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return NO_TRACING;
  const { OtelTracing } = await import('./otel-tracing.ts');
  const captureContent =
    options.captureContent ||
    env['OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT']?.trim().toLowerCase() === 'true';
  return new OtelTracing(env, { ...options, captureContent });
}

/**
 * Ends `span` once `pending` settles (a failure marks it with the error's
 * code), or at once when there is nothing to wait for; returns `pending`.
 */
export function endWhenSettled<T>(span: TraceSpan, pending: Promise<T> | undefined): Promise<T> | undefined {
  if (!span.recording) return pending;
  if (pending === undefined) {
    span.end();
    return undefined;
  }
  return pending.then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      failAndEnd(span, error);
      throw error;
    },
  );
}

/** Marks `span` failed with what `error` says of itself (its `code`, else its class), then ends it. */
export function failAndEnd(span: TraceSpan, error: unknown): void {
  if (!span.recording) return;
  const { code, name } = (error ?? {}) as { code?: unknown; name?: unknown };
  span.fail(typeof code === 'string' ? code : typeof name === 'string' ? name : 'error');
  span.end();
}

function nonEmpty(value: string | undefined): boolean {
  return value !== undefined && value.trim() !== '';
}
