/**
 * Chat answers between their two shapes: a whole completion replayed as
 * stream chunks (a cached answer served to a streaming request), and stream
 * chunks assembled into a whole completion (a streamed answer stored once
 * complete). Both in the canonical (OpenAI) shape.
 */
import type { ChatChoice, ChatCompletion, ChatCompletionChunk, ToolCall, Usage } from '../core/types.ts';

/**
 * The chunks a stream of `completion` would have sent: per choice its role,
 * its content, its tool calls and its finish reason; then the usage chunk
 * when the client asked for one (`stream_options.include_usage`).
 */
export function completionToChunks(completion: ChatCompletion, includeUsage: boolean): ChatCompletionChunk[] {
  const chunk = (choices: ChatCompletionChunk['choices']): ChatCompletionChunk => ({
    id: completion.id,
    object: 'chat.completion.chunk',
    created: completion.created,
    model: completion.model,
    choices,
  });
  const chunks: ChatCompletionChunk[] = [];
  for (const choice of completion.choices) {
    const { index, message } = choice;
    // As OpenAI streams it: content "" on the role chunk of a text answer, null on a tool-call-only one.
    const opening = typeof message.content === 'string' ? '' : null;
    chunks.push(chunk([{ index, delta: { role: 'assistant', content: opening }, finish_reason: null }]));
    if (typeof message.content === 'string' && message.content.length > 0) {
      chunks.push(chunk([{ index, delta: { content: message.content }, finish_reason: null }]));
    }
    message.tool_calls?.forEach((call, position) => {
      chunks.push(
        chunk([
          {
            index,
            delta: {
              tool_calls: [
                {
                  index: position,
                  id: call.id,
                  type: 'function',
                  function: { name: call.function.name, arguments: call.function.arguments },
                },
              ],
            },
            finish_reason: null,
          },
        ]),
      );
    });
    chunks.push(chunk([{ index, delta: {}, finish_reason: choice.finish_reason }]));
  }
  if (includeUsage && completion.usage) chunks.push({ ...chunk([]), usage: completion.usage });
  return chunks;
}

interface ChoiceParts {
  content: string;
  sawContent: boolean;
  toolCalls: ToolCall[];
  finishReason: ChatChoice['finish_reason'];
  refusal: string | null;
}

/** Builds the whole completion from a stream's chunks, as they are relayed. */
export class CompletionAssembler {
  #id = '';
  #created = 0;
  #model = '';
  #usage: Usage | undefined;
  readonly #choices = new Map<number, ChoiceParts>();

  observe(chunk: ChatCompletionChunk): void {
    this.#id ||= chunk.id;
    this.#created ||= chunk.created;
    this.#model ||= chunk.model;
    if (chunk.usage) this.#usage = chunk.usage;
    for (const choice of chunk.choices) {
      let parts = this.#choices.get(choice.index);
      if (parts === undefined) {
        parts = { content: '', sawContent: false, toolCalls: [], finishReason: null, refusal: null };
        this.#choices.set(choice.index, parts);
      }
      const { delta } = choice;
      if (typeof delta.content === 'string') {
        parts.content += delta.content;
        parts.sawContent = true;
      }
      if (typeof delta['refusal'] === 'string') parts.refusal = (parts.refusal ?? '') + delta['refusal'];
      for (const call of delta.tool_calls ?? []) {
        let slot = parts.toolCalls[call.index];
        if (slot === undefined) {
          slot = { id: '', type: 'function', function: { name: '', arguments: '' } };
          parts.toolCalls[call.index] = slot;
        }
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.function.name += call.function.name;
        if (call.function?.arguments) slot.function.arguments += call.function.arguments;
      }
      if (choice.finish_reason) parts.finishReason = choice.finish_reason;
    }
  }

  completion(): ChatCompletion {
    const choices: ChatChoice[] = [...this.#choices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, parts]) => {
        const toolCalls = parts.toolCalls.filter((call) => call !== undefined);
        return {
          index,
          message: {
            role: 'assistant',
            content: parts.sawContent || toolCalls.length === 0 ? parts.content : null,
            ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            ...(parts.refusal !== null ? { refusal: parts.refusal } : {}),
          },
          finish_reason: parts.finishReason,
        };
      });
    return {
      id: this.#id,
      object: 'chat.completion',
      created: this.#created,
      model: this.#model,
      choices,
      ...(this.#usage ? { usage: this.#usage } : {}),
    };
  }
}
