/**
 * The OpenAI API on the wire. Chat Completions and Embeddings are the
 * gateway's canonical shapes (src/core/types.ts): requests, responses and
 * stream chunks go and come as they are, so this adapter has no request or
 * response translation; what is OpenAI's own is the error body.
 */

/** Every non-2xx answer (`error` is a bare string on some OpenAI-compatible servers), and an in-stream error frame. */
export interface OpenAIErrorBody {
  error?: { message?: unknown; type?: unknown; code?: unknown; param?: unknown } | string;
}
