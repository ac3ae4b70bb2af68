/**
 * An embeddings model this gateway serves, as the semantic cache's embedder
 * (`models.<name>.cache.semantic.embedder: <embeddings model>`): each prompt
 * is embedded through the model's own routing, retries and breakers, and
 * billed like any call: one ledger row per attempt, route `cache/semantic`,
 * no key (the gateway spends it on the cache's behalf).
 */
import { embeddingBill } from '../billing/embedding-usage.ts';
import { type Embedder, normalize } from '../cache/semantic/embedder.ts';
import { GatewayError } from '../core/errors.ts';
import { dispatchEmbeddings } from '../dispatch/dispatch.ts';
import type { ModelRoute } from '../routing/model-table.ts';
import type { GatewayContext } from './context.ts';
import { internalCallRecorder } from './internal-call-recorder.ts';

/** The ledger's route for the cache's own embedding calls. */
export const SEMANTIC_EMBED_ROUTE = 'cache/semantic';
/** An embedding asked for after the answer (to remember its prompt) gives up after this long. */
const UNATTENDED_TIMEOUT_MS = 10_000;

type EmbedderContext = Pick<GatewayContext, 'ledger' | 'metrics' | 'pricer' | 'resilience' | 'router'>;

export class ServedEmbedder implements Embedder {
  readonly name: string;
  readonly #route: ModelRoute;
  readonly #gw: EmbedderContext;

  constructor(gw: EmbedderContext, route: ModelRoute) {
    this.name = `model:${route.name}`;
    this.#route = route;
    this.#gw = gw;
  }

  async embed(text: string, signal?: AbortSignal): Promise<Float32Array> {
    const gw = this.#gw;
    const recorder = internalCallRecorder(gw, { route: SEMANTIC_EMBED_ROUTE, model: this.#route.name });
    try {
      const { response, attempt } = await dispatchEmbeddings(
        this.#route,
        { model: this.#route.name, input: text },
        {
          signal: signal ?? AbortSignal.timeout(UNATTENDED_TIMEOUT_MS),
          requestId: recorder.info.requestId,
          recorder,
          resilience: gw.resilience,
          observer: gw.router,
        },
      );
      const billed = embeddingBill(response);
      attempt.ok(billed.usage, billed.source);
      recorder.finish(200);
      const values = response.data?.[0]?.embedding;
      if (!Array.isArray(values) || values.length === 0 || !values.every((v) => Number.isFinite(v))) {
        throw new GatewayError('upstream_bad_response', `${this.name} returned no usable embedding`);
      }
      return normalize(Float32Array.from(values as number[]));
    } catch (error) {
      recorder.finish(error instanceof GatewayError ? error.status : 500);
      throw error;
    }
  }
}
