/**
 * Inbound: a canonical ChatCompletion → the Response object a Responses API
 * client gets, and the pieces the stream encoder shares with it (the
 * response's fixed fields, usage, status).
 *
 * The first choice is the answer: its text becomes one assistant `message`
 * item (a refusal its `refusal` part), each tool call a `function_call` item
 * whose `call_id` is the upstream's tool call id. A finish for length or a
 * content filter makes the response `incomplete`, as OpenAI's does.
 */
import type { ChatCompletion, FinishReason, Usage } from '../../core/types.ts';
import { newItemId } from './responses-ids.ts';
import type {
  OutputItem,
  OutputMessage,
  ResponseObject,
  ResponseStatus,
  ResponsesRequest,
  ResponseUsage,
} from './responses-wire.ts';

export function toResponseUsage(usage: Usage | undefined): ResponseUsage {
  const input = usage?.prompt_tokens ?? 0;
  const output = usage?.completion_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: usage?.prompt_tokens_details?.cached_tokens ?? 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: usage?.completion_tokens_details?.reasoning_tokens ?? 0 },
    total_tokens: usage?.total_tokens ?? input + output,
  };
}

/**
 * The fields of a Response that say what was asked (the request's settings,
 * echoed as OpenAI does), in progress and with no output yet.
 */
export function responseShell(
  body: ResponsesRequest,
  context: { id: string; createdAt: number },
): ResponseObject {
  const response: ResponseObject = {
    id: context.id,
    object: 'response',
    created_at: Math.floor(context.createdAt / 1000),
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    metadata: body.metadata ?? {},
    model: body.model,
    output: [],
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: body.store !== false,
    temperature: body.temperature ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_p: body.top_p ?? null,
    truncation: body.truncation ?? 'disabled',
    usage: null,
  };
  const user = body.user ?? body.safety_identifier;
  if (user !== undefined) response.user = user;
  return response;
}

/** The status a finish reason gives a response, and why it is incomplete. */
export function finishStatus(finish: FinishReason | null | undefined): {
  status: ResponseStatus;
  incomplete: ResponseObject['incomplete_details'];
} {
  if (finish === 'length') return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter') return { status: 'incomplete', incomplete: { reason: 'content_filter' } };
  return { status: 'completed', incomplete: null };
}

/** The finished response: the shell with its output, usage and status. */
export function completeResponse(
  shell: ResponseObject,
  output: OutputItem[],
  finish: FinishReason | null | undefined,
  usage: Usage | undefined,
): ResponseObject {
  const { status, incomplete } = finishStatus(finish);
  return { ...shell, status, incomplete_details: incomplete, output, usage: toResponseUsage(usage) };
}

export function toResponseObject(completion: ChatCompletion, shell: ResponseObject): ResponseObject {
  const choice = completion.choices[0];
  const status = finishStatus(choice?.finish_reason).status === 'completed' ? 'completed' : 'incomplete';
  const output: OutputItem[] = [];
  const text = choice?.message.content;
  const refusal = choice?.message['refusal'];
  const content: OutputMessage['content'] = [];
  if (typeof text === 'string' && text.length > 0) {
    content.push({ type: 'output_text', text, annotations: [], logprobs: [] });
  }
  if (typeof refusal === 'string' && refusal.length > 0) content.push({ type: 'refusal', refusal });
  if (content.length > 0) {
    output.push({ type: 'message', id: newItemId('msg'), role: 'assistant', status, content });
  }
  for (const call of choice?.message.tool_calls ?? []) {
    output.push({
      type: 'function_call',
      id: newItemId('fc'),
      call_id: call.id,
      name: call.function.name,
      arguments: call.function.arguments,
      status: 'completed',
    });
  }
  return completeResponse(shell, output, choice?.finish_reason, completion.usage);
}
