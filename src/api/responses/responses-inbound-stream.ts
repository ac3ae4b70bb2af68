/**
 * Inbound: canonical chunk stream → the Responses API event sequence, one
 * chunk at a time, so each event goes to the client as soon as its chunk
 * arrived. Every event carries a `sequence_number` (0, 1, 2… in order).
 *
 * Order (OpenAI's API reference, "Streaming events"): `response.created`,
 * `response.in_progress`; per output item `response.output_item.added`, then
 * for a message `response.content_part.added` and `response.output_text.delta`s,
 * for a function call `response.function_call_arguments.delta`s; at the end,
 * per item in output order its `.done` events (`response.output_text.done`,
 * `response.content_part.done` / `response.function_call_arguments.done`,
 * then `response.output_item.done`), and last `response.completed` (or
 * `response.incomplete`) with the whole response and its usage. Output
 * indexes count from 0 in the order items were added; a failure after the
 * start is one `error` event, after which the caller closes the stream.
 */
import type { GatewayError } from '../../core/errors.ts';
import type { ChatCompletionChunk, FinishReason, Usage } from '../../core/types.ts';
import { newItemId } from './responses-ids.ts';
import { completeResponse } from './responses-inbound-response.ts';
import type { OutputItem, ResponseObject, ResponseStreamEvent } from './responses-wire.ts';

type OpenItem =
  | { kind: 'message'; id: string; outputIndex: number; text: string }
  | { kind: 'call'; id: string; outputIndex: number; callId: string; name: string; args: string };

export class ResponsesStreamEncoder {
  readonly #shell: ResponseObject;
  #sequence = 0;
  #started = false;
  readonly #items: OpenItem[] = [];
  #message: Extract<OpenItem, { kind: 'message' }> | undefined;
  /** Canonical tool call index → its item. */
  readonly #calls = new Map<number, Extract<OpenItem, { kind: 'call' }>>();
  #finish: FinishReason | null = null;
  #final: ResponseObject | undefined;

  constructor(shell: ResponseObject) {
    this.#shell = shell;
  }

  /** The response as the last event gave it (after `finish`): what is stored. */
  get response(): ResponseObject | undefined {
    return this.#final;
  }

  /** `response.created` and `response.in_progress` (once, before anything else). */
  start(): ResponseStreamEvent[] {
    const events: ResponseStreamEvent[] = [];
    this.#ensureStarted(events);
    return events;
  }

  /** Events for one canonical chunk. */
  push(chunk: ChatCompletionChunk): ResponseStreamEvent[] {
    const events: ResponseStreamEvent[] = [];
    this.#ensureStarted(events);
    // A response has one answer: choices other than the first (n > 1) have nowhere to go.
    const choice = chunk.choices.find((c) => c.index === 0);
    if (choice === undefined) return events;
    const text = choice.delta.content;
    if (typeof text === 'string' && text.length > 0) {
      const message = this.#message ?? this.#openMessage(events);
      message.text += text;
      events.push(
        this.#event('response.output_text.delta', {
          item_id: message.id,
          output_index: message.outputIndex,
          content_index: 0,
          delta: text,
          logprobs: [],
        }),
      );
    }
    for (const delta of choice.delta.tool_calls ?? []) {
      const call = this.#calls.get(delta.index) ?? this.#openCall(events, delta);
      const partial = delta.function?.arguments;
      if (typeof partial === 'string' && partial.length > 0) {
        call.args += partial;
        events.push(
          this.#event('response.function_call_arguments.delta', {
            item_id: call.id,
            output_index: call.outputIndex,
            delta: partial,
          }),
        );
      }
    }
    if (choice.finish_reason) this.#finish = choice.finish_reason;
    return events;
  }

  /** The closing events, with the usage billed for the attempt (upstream's or estimated). */
  finish(usage: Usage | undefined): ResponseStreamEvent[] {
    const events: ResponseStreamEvent[] = [];
    this.#ensureStarted(events);
    const output: OutputItem[] = [];
    const status =
      this.#finish === 'length' || this.#finish === 'content_filter' ? 'incomplete' : 'completed';
    for (const item of this.#items) {
      const done = this.#closeItem(events, item, status);
      output.push(done);
    }
    const response = completeResponse(this.#shell, output, this.#finish, usage);
    this.#final = response;
    events.push(
      this.#event(response.status === 'completed' ? 'response.completed' : 'response.incomplete', {
        response,
      }),
    );
    return events;
  }

  /** The event that ends a stream that failed after it started (OpenAI's `error` event). */
  error(error: GatewayError): ResponseStreamEvent[] {
    const events: ResponseStreamEvent[] = [];
    this.#ensureStarted(events);
    events.push(
      this.#event('error', { code: error.code, message: error.message, param: error.param ?? null }),
    );
    return events;
  }

  #event(type: string, fields: Record<string, unknown>): ResponseStreamEvent {
    return { type, sequence_number: this.#sequence++, ...fields };
  }

  #ensureStarted(events: ResponseStreamEvent[]): void {
    if (this.#started) return;
    this.#started = true;
    events.push(this.#event('response.created', { response: this.#shell }));
    events.push(this.#event('response.in_progress', { response: this.#shell }));
  }

  #openMessage(events: ResponseStreamEvent[]): Extract<OpenItem, { kind: 'message' }> {
    const message = {
      kind: 'message' as const,
      id: newItemId('msg'),
      outputIndex: this.#items.length,
      text: '',
    };
    this.#items.push(message);
    this.#message = message;
    events.push(
      this.#event('response.output_item.added', {
        output_index: message.outputIndex,
        item: { id: message.id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
      }),
      this.#event('response.content_part.added', {
        item_id: message.id,
        output_index: message.outputIndex,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      }),
    );
    return message;
  }

  #openCall(
    events: ResponseStreamEvent[],
    delta: NonNullable<ChatCompletionChunk['choices'][number]['delta']['tool_calls']>[number],
  ): Extract<OpenItem, { kind: 'call' }> {
    const call = {
      kind: 'call' as const,
      id: newItemId('fc'),
      outputIndex: this.#items.length,
      // An upstream that names no id (never seen from the adapters) still gives the client one to answer.
      callId: delta.id ?? newItemId('call'),
      name: delta.function?.name ?? '',
      args: '',
    };
    this.#items.push(call);
    this.#calls.set(delta.index, call);
    events.push(
      this.#event('response.output_item.added', {
        output_index: call.outputIndex,
        item: {
          id: call.id,
          type: 'function_call',
          status: 'in_progress',
          call_id: call.callId,
          name: call.name,
          arguments: '',
        },
      }),
    );
    return call;
  }

  #closeItem(events: ResponseStreamEvent[], item: OpenItem, status: 'completed' | 'incomplete'): OutputItem {
    if (item.kind === 'message') {
      const part = { type: 'output_text' as const, text: item.text, annotations: [], logprobs: [] };
      const done: OutputItem = { id: item.id, type: 'message', status, role: 'assistant', content: [part] };
      const where = { item_id: item.id, output_index: item.outputIndex, content_index: 0 };
      events.push(
        this.#event('response.output_text.done', { ...where, text: item.text, logprobs: [] }),
        this.#event('response.content_part.done', { ...where, part }),
        this.#event('response.output_item.done', { output_index: item.outputIndex, item: done }),
      );
      return done;
    }
    const done: OutputItem = {
      id: item.id,
      type: 'function_call',
      status: 'completed',
      call_id: item.callId,
      name: item.name,
      arguments: item.args,
    };
    events.push(
      this.#event('response.function_call_arguments.done', {
        item_id: item.id,
        output_index: item.outputIndex,
        arguments: item.args,
      }),
      this.#event('response.output_item.done', { output_index: item.outputIndex, item: done }),
    );
    return done;
  }
}

/** One SSE frame, named by its event type as OpenAI sends them. */
export function encodeResponseEvent(event: ResponseStreamEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
