/**
 * The upstream's own JSON text of a parsed stream chunk or answer, kept beside
 * the value. A relay that sends it on in the same format, changed at most in
 * a field or two it knows how to edit as text (api/openai/chunk-frame.ts,
 * api/openai/model-swap.ts), writes that text instead of serializing the
 * object again: re-serializing every chunk was about a fifth of a relayed
 * stream's CPU.
 *
 * Only an adapter whose wire format is the canonical one (OpenAI's) attaches
 * it, and the text is the value as received: code that changes a chunk in
 * any other way must not send its wire text.
 */
const WIRE_TEXT = Symbol('switchyard.wireText');

type WithWireText = { [WIRE_TEXT]?: string };

/** Marks `value` as parsed from `text`; returns `value`. */
export function attachWireText<T extends object>(value: T, text: string): T {
  (value as WithWireText)[WIRE_TEXT] = text;
  return value;
}

/** The JSON text `value` was parsed from, when its adapter kept it. */
export function wireTextOf(value: object): string | undefined {
  return (value as WithWireText)[WIRE_TEXT];
}
