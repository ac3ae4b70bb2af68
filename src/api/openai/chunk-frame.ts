/**
 * How a canonical stream chunk goes out to an OpenAI client: its JSON text,
 * with the model the client asked for and without the usage it did not ask
 * for (usage is always requested upstream, for billing).
 *
 * When the upstream spoke OpenAI's format the chunk carries its wire text
 * (core/wire-text.ts), and the two edits are made on that text: the model's
 * value swapped (model-swap.ts says why that is sound), a `"usage":null`
 * member cut, the same way (only when it occurs once). Anything else (a
 * usage object to drop, a model that cannot be swapped on the text) is
 * serialized from the object as before.
 */
import type { ChatCompletionChunk } from '../../core/types.ts';
import { wireFrameOf, wireTextOf } from '../../core/wire-text.ts';
import { onlyOccurrence, swapModelText } from './model-swap.ts';

const USAGE_NULL = '"usage":null';

/** Encodes the chunks of one stream for its client. */
export class ChunkFrameEncoder {
  readonly #model: string;
  readonly #modelJson: string;
  readonly #keepUsage: boolean;
  /** The last upstream model seen and its JSON, so a stream encodes it once. */
  #upstreamModel: string | undefined;
  #upstreamModelJson = '';

  /** `model`: the name the client asked for; `keepUsage`: the client asked for usage. */
  constructor(model: string, keepUsage: boolean) {
    this.#model = model;
    this.#modelJson = JSON.stringify(model);
    this.#keepUsage = keepUsage;
  }

  /**
   * The bytes the chunk came in, when the client gets it exactly as it came
   * (the model it asked for, no usage to cut): written as they are, the
   * chunk's frame costs no text to build and no UTF-8 to encode again.
   * Undefined otherwise, or when the event did not keep its bytes: then `encode`.
   */
  wireFrame(chunk: ChatCompletionChunk): Uint8Array | undefined {
    const frame = wireFrameOf(chunk);
    if (frame === undefined || chunk.model !== this.#model) return undefined;
    return this.#keepUsage || chunk.usage === undefined ? frame : undefined;
  }

  /** The chunk's JSON for the client; the chunk itself is not changed. */
  encode(chunk: ChatCompletionChunk): string {
    const text = this.#edited(chunk);
    if (text !== undefined) return text;
    const usage = this.#keepUsage ? chunk.usage : undefined;
    // JSON.stringify leaves out a member whose value is undefined.
    return JSON.stringify({ ...chunk, model: this.#model, usage });
  }

  /** The wire text with the edits made, or undefined when they cannot be made safely on text. */
  #edited(chunk: ChatCompletionChunk): string | undefined {
    let text = wireTextOf(chunk);
    if (text === undefined) return undefined;
    if (chunk.model !== this.#model) {
      if (typeof chunk.model !== 'string') return undefined;
      text = this.#swapModel(text, chunk.model);
      if (text === undefined) return undefined;
    }
    if (!this.#keepUsage && chunk.usage !== undefined) {
      if (chunk.usage !== null) return undefined;
      text = cutUsageNull(text);
    }
    return text;
  }

  #swapModel(text: string, upstreamModel: string): string | undefined {
    if (upstreamModel !== this.#upstreamModel) {
      this.#upstreamModel = upstreamModel;
      this.#upstreamModelJson = JSON.stringify(upstreamModel);
    }
    return swapModelText(text, this.#upstreamModelJson, this.#modelJson);
  }
}

/** Removes the one `"usage":null` member with its comma, or returns undefined. */
function cutUsageNull(text: string): string | undefined {
  const at = onlyOccurrence(text, USAGE_NULL);
  if (at === -1) return undefined;
  const end = at + USAGE_NULL.length;
  // A member after it takes its comma; the last member gives up the one before it.
  if (text.charCodeAt(end) === 44) return text.slice(0, at) + text.slice(end + 1);
  if (text.charCodeAt(at - 1) === 44) return text.slice(0, at - 1) + text.slice(end);
  return undefined;
}
