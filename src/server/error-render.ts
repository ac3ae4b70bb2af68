/**
 * Each API answers errors in its own shape: a route names its renderer in
 * its Fastify config (`config: { renderError }`) and the app's one error
 * handler uses it for everything that fails on that route (auth hooks, body
 * parsing, validation, upstream errors). Routes without one answer in
 * OpenAI's shape (src/api/openai/openai-inbound-error.ts).
 */
import type { GatewayError } from '../core/errors.ts';

export type ErrorRenderer = (error: GatewayError, requestId: string) => { status: number; body: unknown };

declare module 'fastify' {
  interface FastifyContextConfig {
    renderError?: ErrorRenderer;
    /** Health and metrics keep answering while the gateway drains; every other route refuses new work. */
    servesWhileDraining?: boolean;
  }
}
