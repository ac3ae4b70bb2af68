/**
 * Anthropic `stop_reason` ⇄ canonical `finish_reason`: one table, read in
 * both directions. Several stop reasons share a finish reason; the way back
 * takes the first one listed, and `stop` becomes `stop_sequence` only when
 * the matched sequence is known.
 */
import type { FinishReason } from '../../core/types.ts';
import type { StopReason } from './anthropic-wire.ts';

/** First entry for a finish reason is the one it maps back to. */
const STOP_TO_FINISH: ReadonlyArray<readonly [StopReason, FinishReason]> = [
  ['end_turn', 'stop'],
  ['stop_sequence', 'stop'],
  // A server tool paused the turn; the client continues it by sending the answer back, as after any stop.
  ['pause_turn', 'stop'],
  ['max_tokens', 'length'],
  ['model_context_window_exceeded', 'length'],
  ['tool_use', 'tool_calls'],
  ['refusal', 'content_filter'],
];

const FINISH_OF = new Map<string, FinishReason>(STOP_TO_FINISH);
const STOP_OF = new Map<string, StopReason>();
for (const [stop, finish] of STOP_TO_FINISH) if (!STOP_OF.has(finish)) STOP_OF.set(finish, stop);
// The legacy name of tool_calls.
STOP_OF.set('function_call', 'tool_use');

/** Unknown (newer) stop reasons end the turn as a plain stop. */
export function toFinishReason(reason: StopReason | string | null | undefined): FinishReason {
  return (reason ? FINISH_OF.get(reason) : undefined) ?? 'stop';
}

export interface StopInfo {
  stop_reason: StopReason;
  stop_sequence: string | null;
}

/**
 * Chat Completions says only `stop`; which stop sequence ended the text is
 * knowable when an OpenAI-compatible server reports it (vLLM's `stop_reason`
 * holds the matched string).
 */
export function toStopInfo(
  finish: FinishReason | null | undefined,
  matched: unknown,
  stopSequences: readonly string[] | undefined,
): StopInfo {
  const reason = (finish ? STOP_OF.get(finish) : undefined) ?? 'end_turn';
  if (reason === 'end_turn' && typeof matched === 'string' && stopSequences?.includes(matched)) {
    return { stop_reason: 'stop_sequence', stop_sequence: matched };
  }
  return { stop_reason: reason, stop_sequence: null };
}
