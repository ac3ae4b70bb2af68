/**
 * An OpenAI answer's wire text (core/wire-text.ts) with its `model` member's
 * value swapped for the name the client asked for: how an answer that needs
 * no other change goes out as the upstream wrote it, without serializing the
 * parsed object again (for a 1 KB chat answer ~1.3 µs and ~1 KB of garbage;
 * for embeddings, thousands of numbers turned back into text).
 *
 * Sound because a JSON string cannot hold an unescaped `"model":` (a quote
 * inside a string is `\"`), so that byte sequence is always a member name;
 * the swap is made only when it occurs once, followed by exactly the value
 * the parsed answer holds. Anything else (whitespace after the colon, a
 * second `model` member in a nested object) is left to the caller to
 * serialize from the object.
 */
import { wireTextOf } from '../../core/wire-text.ts';

const MODEL_MEMBER = '"model":';

/**
 * `text` with the value of its one `"model":` member, `fromJson` (the JSON of
 * the value the parsed answer holds), replaced by `toJson`; undefined when
 * that cannot be done safely on the text.
 */
export function swapModelText(text: string, fromJson: string, toJson: string): string | undefined {
  const at = onlyOccurrence(text, MODEL_MEMBER);
  if (at === -1) return undefined;
  const valueAt = at + MODEL_MEMBER.length;
  if (!text.startsWith(fromJson, valueAt)) return undefined;
  return text.slice(0, valueAt) + toJson + text.slice(valueAt + fromJson.length);
}

/**
 * The JSON text to send for `answer` (a chat completion or an embeddings
 * response, parsed from the upstream and not changed since) as the client's
 * `model`: its wire text, model swapped when it differs. Undefined when the
 * answer carries no wire text or the swap cannot be made on it: serialize it.
 */
export function answerText(answer: { model?: unknown }, model: string): string | undefined {
  const text = wireTextOf(answer);
  if (text === undefined || answer.model === model) return text;
  if (typeof answer.model !== 'string') return undefined;
  return swapModelText(text, JSON.stringify(answer.model), JSON.stringify(model));
}

/** Where `part` occurs in `text` if it occurs exactly once, else -1. */
export function onlyOccurrence(text: string, part: string): number {
  const at = text.indexOf(part);
  if (at === -1 || text.indexOf(part, at + 1) !== -1) return -1;
  return at;
}
