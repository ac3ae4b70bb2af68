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

const WIRE_FRAME = Symbol('switchyard.wireFrame');

type WithWireFrame = { [WIRE_FRAME]?: Uint8Array };

/**
 * Marks a stream chunk as having come as `frame`, the whole event's bytes:
 * exactly `data: ${its wire text}\n\n` (providers/sse.ts says when an
 * event keeps them). A relay that sends the chunk on unchanged writes those
 * bytes (api/openai/chunk-frame.ts), as a bare pass-through would. Returns `value`.
 */
export function attachWireFrame<T extends object>(value: T, frame: Uint8Array): T {
  (value as WithWireFrame)[WIRE_FRAME] = frame;
  return value;
}

/** The bytes a stream chunk came in, when its adapter kept them. */
export function wireFrameOf(value: object): Uint8Array | undefined {
  return (value as WithWireFrame)[WIRE_FRAME];
}
