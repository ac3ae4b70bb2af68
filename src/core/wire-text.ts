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
/** A value kept beside a parsed object, under a symbol of its own (no JSON sees it). */
function keptBeside<Kept>(description: string) {
  const key = Symbol(description);
  return {
    /** Keeps `kept` beside `value`; returns `value`. */
    attach<T extends object>(value: T, kept: Kept): T {
      (value as Record<symbol, unknown>)[key] = kept;
      return value;
    },
    of(value: object): Kept | undefined {
      return (value as Record<symbol, unknown>)[key] as Kept | undefined;
    },
  };
}

const wireText = keptBeside<string>('switchyard.wireText');

/** Marks `value` as parsed from `text`; returns `value`. */
export const attachWireText = wireText.attach;

/** The JSON text `value` was parsed from, when its adapter kept it. */
export const wireTextOf = wireText.of;

/**
 * A stream chunk's whole event as it came, in bytes: exactly
 * `data: ${its wire text}\n\n` (providers/sse.ts says when an event keeps
 * them). A relay that sends the chunk on unchanged writes those bytes
 * (api/openai/chunk-frame.ts), as a bare pass-through would.
 */
const wireFrame = keptBeside<Uint8Array>('switchyard.wireFrame');

/** Marks a stream chunk as having come as `frame`; returns the chunk. */
export const attachWireFrame = wireFrame.attach;

/** The bytes a stream chunk came in, when its adapter kept them. */
export const wireFrameOf = wireFrame.of;
