/**
 * The sampler named by `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`,
 * as the OpenTelemetry environment specification defines them (the SDK
 * package no longer reads them itself). Default `parentbased_always_on`: a
 * client's sampling decision (its `traceparent` flags) is followed, and a
 * request without one is sampled.
 */
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';

export const SAMPLER_NAMES = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

export function samplerFromEnv(env: NodeJS.ProcessEnv, warn: (message: string) => void): Sampler {
  const raw = env['OTEL_TRACES_SAMPLER']?.trim().toLowerCase() || 'parentbased_always_on';
  const name = (SAMPLER_NAMES as readonly string[]).includes(raw) ? raw : 'parentbased_always_on';
  if (name !== raw) {
    warn(`tracing: OTEL_TRACES_SAMPLER=${raw} is not supported (${SAMPLER_NAMES.join(', ')}); using ${name}`);
  }
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratioFromEnv(env, warn));
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratioFromEnv(env, warn)) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** `OTEL_TRACES_SAMPLER_ARG` as a ratio in [0, 1]; 1 when unset or invalid (as the specification says). */
function ratioFromEnv(env: NodeJS.ProcessEnv, warn: (message: string) => void): number {
  const raw = env['OTEL_TRACES_SAMPLER_ARG']?.trim();
  if (raw === undefined || raw === '') return 1;
  const ratio = Number(raw);
  if (Number.isFinite(ratio) && ratio >= 0 && ratio <= 1) return ratio;
  warn(`tracing: OTEL_TRACES_SAMPLER_ARG=${raw} is not a ratio in [0, 1]; sampling every trace`);
  return 1;
}
