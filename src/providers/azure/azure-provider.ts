/**
 * Azure OpenAI: the OpenAI wire format behind per-deployment URLs.
 *
 * The OpenAI adapter does all translation, streaming and error mapping; this
 * wrapper only decides where requests go (`/openai/deployments/{deployment}/...
 * ?api-version=`), sends the key as `api-key`, and drops the stream frames
 * Azure adds that carry no choices and no usage (`prompt_filter_results`),
 * which clients of the canonical format do not expect as a first chunk.
 *
 * Content filtering arrives two ways and both pass through as Azure says:
 * a rejected prompt is a 400 with `code: content_filter` (a final client error,
 * never retried elsewhere), a filtered answer is `finish_reason: content_filter`.
 */
import { GatewayError } from '../../core/errors.ts';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResponse,
} from '../../core/types.ts';
import { type OpenAIOperation, OpenAIProvider } from '../openai/index.ts';
import type { AttemptContext, ProbeOptions, ProviderAdapter } from '../types.ts';

export interface AzureProviderOptions {
  name: string;
  /** `https://{resource}.openai.azure.com` */
  endpoint: string;
  apiKey: string;
  apiVersion: string;
  /** Model id → deployment name; models not listed are their own deployment name. */
  deployments?: Record<string, string>;
  headers?: Record<string, string>;
  maxConnections?: number;
}

const DEPLOYMENT_NAME = /^[A-Za-z0-9._:-]+$/;

export class AzureProvider implements ProviderAdapter {
  readonly name: string;
  readonly type = 'azure';
  readonly #openai: OpenAIProvider;

  constructor(options: AzureProviderOptions) {
    this.name = options.name;
    const deployments = options.deployments ?? {};
    const query = `?api-version=${encodeURIComponent(options.apiVersion)}`;
    this.#openai = new OpenAIProvider({
      name: options.name,
      type: 'azure',
      baseUrl: `${options.endpoint.replace(/\/+$/, '')}/openai`,
      apiKey: options.apiKey,
      keyHeader: 'api-key',
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
      pathFor: (operation: OpenAIOperation, model: string) => {
        if (operation === 'models') return `/models${query}`;
        return `/deployments/${deploymentFor(deployments, model)}/${operation}${query}`;
      },
    });
  }

  chat(request: ChatRequest, ctx: AttemptContext): Promise<ChatCompletion> {
    return this.#openai.chat(request, ctx);
  }

  async streamChat(request: ChatRequest, ctx: AttemptContext): Promise<AsyncIterable<ChatCompletionChunk>> {
    return withoutFilterFrames(await this.#openai.streamChat(request, ctx));
  }

  embed(request: EmbeddingRequest, ctx: AttemptContext): Promise<EmbeddingResponse> {
    return this.#openai.embed(request, ctx);
  }

  check(signal: AbortSignal, options?: ProbeOptions): Promise<void> {
    return this.#openai.check(signal, options);
  }

  close(): Promise<void> {
    return this.#openai.close();
  }
}

/** The deployment serving a model; checked because it becomes a URL path segment. */
export function deploymentFor(deployments: Record<string, string>, model: string): string {
  const deployment = Object.hasOwn(deployments, model) ? deployments[model]! : model;
  if (!DEPLOYMENT_NAME.test(deployment)) {
    throw new GatewayError(
      'invalid_request',
      `Model '${model}' does not map to a valid Azure deployment name`,
    );
  }
  return deployment;
}

async function* withoutFilterFrames(
  stream: AsyncIterable<ChatCompletionChunk>,
): AsyncGenerator<ChatCompletionChunk> {
  for await (const chunk of stream) {
    if (chunk.choices.length === 0 && !chunk.usage) continue;
    yield chunk;
  }
}
