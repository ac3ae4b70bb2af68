/**
 * What every inbound JSON body must satisfy beyond being JSON: a bounded
 * nesting depth and no prototype-pollution keys.
 *
 * `JSON.parse` accepts any depth, but almost everything after it recurses:
 * `JSON.stringify` on the way upstream, schema cleaning, translation, the
 * admin store. A body nested ~10,000 levels (50 KB) overflows the stack in
 * any of them, and a gateway-side failure must never look like the
 * upstream's. So the parsed body is walked once, right after parsing, and a
 * body over the bound is the client's error (400) before any attempt.
 *
 * 64 levels is far beyond real requests: tool and structured-output schemas
 * nest a few levels (OpenAI's strict mode allows 10), chat content 4.
 *
 * The same walk refuses `__proto__` keys and `constructor.prototype` (what
 * Fastify's secure parser refuses, but reported as what it is rather than as
 * "not valid JSON").
 */
export const MAX_JSON_DEPTH = 64;

export interface JsonProblem {
  kind: 'too_deep' | 'prototype_key';
  /** Keys and indexes from the top down to the offending value. */
  path: string[];
}

/** The first problem in a parsed JSON value, or undefined. Recursion is bounded by `max`. */
export function jsonProblem(value: unknown, max: number = MAX_JSON_DEPTH): JsonProblem | undefined {
  return typeof value === 'object' && value !== null ? walk(value, 1, max) : undefined;
}

function walk(value: unknown, depth: number, max: number): JsonProblem | undefined {
  if (depth > max) return { kind: 'too_deep', path: [] };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'object' || item === null) continue;
      const problem = walk(item, depth + 1, max);
      if (problem !== undefined) return under(String(i), problem);
    }
    return undefined;
  }
  const object = value as Record<string, unknown>;
  for (const key in object) {
    const item = object[key];
    if (key === '__proto__' || (key === 'constructor' && isPrototypeCarrier(item))) {
      return { kind: 'prototype_key', path: [key] };
    }
    if (typeof item !== 'object' || item === null) continue;
    const problem = walk(item, depth + 1, max);
    if (problem !== undefined) return under(key, problem);
  }
  return undefined;
}

function isPrototypeCarrier(value: unknown): boolean {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype');
}

/** Paths are built only on the (rare) failure; at most `max` + 1 segments. */
function under(segment: string, problem: JsonProblem): JsonProblem {
  problem.path.unshift(segment);
  return problem;
}
