/**
 * One /metrics for `switchyard start --workers N`.
 *
 * The workers share one port, so a scrape reaches one of them at random; if it
 * answered with its own numbers, every counter would jump between workers'
 * values from scrape to scrape and Prometheus' rate() would read each jump as
 * a reset. Instead the worker that takes a scrape asks the primary, the
 * primary collects every worker's registry over the cluster's IPC channel
 * (prom-client's AggregatorRegistry) and answers with their aggregate:
 * counters and histograms summed; gauges by the aggregator each declares
 * (in-flight requests summed, Redis connected the minimum, a breaker's state
 * or a health check the maximum, a queue depth read from the shared store the
 * maximum rather than N times the same count).
 *
 * A worker answers the primary's collection from the moment it starts
 * (`answerFleetCollections`), with an empty registry until its gateway has
 * one; a worker that does not answer within prom-client's 5 s fails that
 * scrape (an error, not a silently partial count).
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'switchyard:fleet-metrics';
const ANSWER = 'switchyard:fleet-metrics-answer';

interface FleetMetricsRequest {
  type: typeof REQUEST;
  id: number;
}

interface FleetMetricsAnswer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

function isRequest(message: unknown): message is FleetMetricsRequest {
  return (message as { type?: unknown } | null)?.type === REQUEST;
}

function isAnswer(message: unknown): message is FleetMetricsAnswer {
  return (message as { type?: unknown } | null)?.type === ANSWER;
}

/** In the primary: answers every worker's request for the fleet's metrics. */
export function serveFleetMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isRequest(message)) return;
    const answer = (fields: Omit<FleetMetricsAnswer, 'type' | 'id'>) => {
      if (worker.isConnected()) worker.send({ type: ANSWER, id: message.id, ...fields });
    };
    aggregator.clusterMetrics().then(
      (text) => answer({ text }),
      (error: unknown) => answer({ error: error instanceof Error ? error.message : String(error) }),
    );
  });
}

/** In a worker, first thing: answer the primary's collections (with nothing until `fleetMetricsRenderer`). */
export function answerFleetCollections(): void {
  AggregatorRegistry.setRegistries([]);
  // The constructor installs the worker's answering listener (once per process).
  new AggregatorRegistry();
}

/**
 * In a worker: from now on the primary's collections read `registry`, and the
 * function returned renders the whole fleet's metrics (rejecting when the
 * primary does not answer within `timeoutMs`).
 */
export function fleetMetricsRenderer(registry: Registry, timeoutMs = 10_000): () => Promise<string> {
  answerFleetCollections();
  AggregatorRegistry.setRegistries([registry]);
  const pending = new Map<number, { resolve(text: string): void; reject(error: Error): void }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isAnswer(message)) return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    if (message.text !== undefined) waiting.resolve(message.text);
    else
      waiting.reject(
        new Error(`the fleet's metrics could not be collected: ${message.error ?? 'no answer'}`),
      );
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the primary did not answer with the fleet's metrics in time"));
      }, timeoutMs);
      timer.unref();
      pending.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      const request: FleetMetricsRequest = { type: REQUEST, id };
      process.send?.(request);
    });
}
