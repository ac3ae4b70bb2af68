/**
 * What can be kept of a config the schema refused, so the cross-reference
 * checks (unknown providers, groups, embedders...) still run and a user
 * fixing a config sees every mistake in one go, not one per attempt.
 *
 * Zod stops at the first failing branch of a union and fails the whole
 * parse: a provider with a bad `type` leaves no parsed config at all, so the
 * model pointing at a provider that does not exist went unreported until the
 * type was fixed. Here each top-level section, and each provider and model,
 * is parsed on its own; what fails is replaced:
 *
 * - a section by its default (and named in `failed`, so checks that read it
 *   can stand down rather than report a consequence of the same mistake);
 * - a provider or model by a placeholder under the same name, so references
 *   to it are not reported as unknown: it exists, it is only invalid, and
 *   that is already reported.
 */
import { type Config, configSchema, modelSchema, providerSchema } from './schema.ts';

export interface SalvagedConfig {
  config: Config;
  /** Top-level sections that failed to parse and stand at their defaults. */
  failed: ReadonlySet<string>;
}

/** Null when the input is not even a mapping (nothing to cross-check). */
export function salvageConfig(raw: unknown): SalvagedConfig | null {
  if (!isMapping(raw)) return null;
  const failed = new Set<string>();
  const out: Record<string, unknown> = {};
  const shape = configSchema.shape as Record<
    string,
    { safeParse(v: unknown): { success: boolean; data?: unknown } }
  >;
  for (const [key, schema] of Object.entries(shape)) {
    if (key === 'providers' || key === 'models') continue;
    const parsed = schema.safeParse(raw[key]);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      failed.add(key);
      out[key] = schema.safeParse(undefined).data;
    }
  }
  out['providers'] = salvageEntries(raw['providers'], 'providers', failed, (value) => {
    const parsed = providerSchema.safeParse(value);
    return parsed.success ? parsed.data : PLACEHOLDER_PROVIDER;
  });
  out['models'] = salvageEntries(raw['models'], 'models', failed, (value) => {
    const parsed = modelSchema.safeParse(value);
    return parsed.success ? parsed.data : placeholderModel();
  });
  return { config: out as Config, failed };
}

function salvageEntries(
  value: unknown,
  section: string,
  failed: Set<string>,
  parse: (entry: unknown) => unknown,
): Record<string, unknown> {
  if (!isMapping(value)) {
    failed.add(section);
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(value)) out[name] = parse(entry);
  return out;
}

const PLACEHOLDER_PROVIDER = providerSchema.parse({ type: 'mock' });

/** A model with no targets, routes or semantic cache: nothing in it can trip a cross-check. */
function placeholderModel(): unknown {
  return { ...modelSchema.parse({ targets: [{ group: 'placeholder' }] }), targets: [] };
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
