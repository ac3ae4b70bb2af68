/**
 * /metrics read the way Prometheus reads it: parsed by an exposition-format
 * parser (parse-prometheus-text-format), never by regular expressions, so a
 * malformed line fails the test. Plus the sums tests compare before and after
 * an event, and the series names a PromQL expression may use.
 */
import { createRequire } from 'node:module';

export interface PromSample {
  labels?: Record<string, string>;
  /** Counters, gauges, untyped. */
  value?: string;
  /** Histograms and summaries. */
  count?: string;
  sum?: string;
  buckets?: Record<string, string>;
}

export interface PromFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: PromSample[];
}

// A CommonJS module without type declarations.
const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (
  text: string,
) => PromFamily[];

/**
 * A sample line of the text format: name, optional labels, a value, an optional
 * timestamp. NaN and Inf in any case, as Prometheus reads them (Go's ParseFloat;
 * prom-client writes `Nan`).
 */
const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.eE+-]+|[nN][aA][nN]|[+-]?[iI][nN][fF])( -?\d+)?$/;

/**
 * Parses an exposition. Every line must be a comment (`# HELP`, `# TYPE`) or
 * a well-formed sample (the parser itself is lenient). The parser folds a
 * labelled histogram's series into one unlabelled sample, so histogram series
 * are read again as plain `<name>_bucket`, `_sum` and `_count` families, and
 * `total` counts a histogram's observations from its `_count` series.
 */
export function parseMetrics(text: string): Map<string, PromFamily> {
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    if (!SAMPLE_LINE.test(line)) throw new Error(`not a Prometheus sample line: ${line.slice(0, 200)}`);
  }
  const families = new Map(parse(text).map((family) => [family.name, family]));
  const histograms = new Set(
    [...families.values()].filter((f) => f.type === 'HISTOGRAM' || f.type === 'SUMMARY').map((f) => f.name),
  );
  if (histograms.size > 0) {
    const untyped = text
      .split('\n')
      .filter((line) => {
        const m = /^# (HELP|TYPE) (\S+)/.exec(line);
        return m === null || !histograms.has(m[2]!);
      })
      .join('\n');
    for (const family of parse(untyped)) {
      if (families.has(family.name) && !histograms.has(family.name.replace(/_(bucket|sum|count)$/, '')))
        continue;
      const seen = families.get(family.name);
      if (seen !== undefined && seen.type === 'UNTYPED') seen.metrics.push(...family.metrics);
      else families.set(family.name, family);
    }
  }
  return families;
}

/**
 * The sum over a family's samples whose labels include `labels`: values for
 * counters and gauges, observation counts for histograms. 0 when none match.
 */
export function total(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  let family = families.get(name);
  if (family?.type === 'HISTOGRAM' || family?.type === 'SUMMARY') family = families.get(`${name}_count`);
  if (family === undefined) return 0;
  let sum = 0;
  for (const sample of family.metrics) {
    const own = sample.labels ?? {};
    if (!Object.entries(labels).every(([k, v]) => own[k] === v)) continue;
    sum += Number(sample.value ?? sample.count ?? 0);
  }
  return sum;
}

/** Every series name the exposition holds (histograms and summaries with their `_bucket`/`_sum`/`_count`). */
export function seriesNames(families: Map<string, PromFamily>): Set<string> {
  const names = new Set<string>();
  for (const family of families.values()) {
    names.add(family.name);
    if (family.type === 'HISTOGRAM')
      for (const s of ['_bucket', '_sum', '_count']) names.add(family.name + s);
    if (family.type === 'SUMMARY') for (const s of ['_sum', '_count']) names.add(family.name + s);
  }
  return names;
}
