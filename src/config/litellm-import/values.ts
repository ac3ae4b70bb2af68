/**
 * Reading LiteLLM values: `os.environ/NAME` references (which become
 * Switchyard's `${NAME}`), seconds (which become milliseconds), numbers
 * written as strings, and the mapping/list shapes YAML may give.
 */

const ENV_REFERENCE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/;

/** Switchyard's reference to an environment variable: `${NAME}`. */
export function envVar(name: string): string {
  return `\${${name}}`;
}

/** `os.environ/NAME` → `${NAME}`; other strings and numbers as text; anything else undefined. */
export function stringValue(value: unknown): string | undefined {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  const reference = ENV_REFERENCE.exec(value.trim());
  return reference ? envVar(reference[1]!) : value.trim();
}

/** True when a value is read from the environment (so it may be absent or anything at run time). */
export function isEnvReference(value: unknown): boolean {
  return typeof value === 'string' && ENV_REFERENCE.test(value.trim());
}

/** The environment variable a `${NAME}` or `os.environ/NAME` names, if it is one. */
export function envName(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return ENV_REFERENCE.exec(value.trim())?.[1] ?? /^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value)?.[1];
}

/** A finite number, from a number or a numeric string; undefined otherwise. */
export function numberValue(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
  return undefined;
}

/** Seconds (LiteLLM's unit for timeouts and cooldowns) → whole positive milliseconds. */
export function secondsToMs(value: unknown): number | undefined {
  const seconds = numberValue(value);
  if (seconds === undefined || seconds <= 0) return undefined;
  return Math.max(1, Math.round(seconds * 1000));
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function booleanValue(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'True') return true;
  if (value === 'false' || value === 'False') return false;
  return undefined;
}
