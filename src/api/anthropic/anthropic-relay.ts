/**
 * Passthrough of an Anthropic upstream's stream to an Anthropic client: each
 * event goes out as it came (its name and its data as sent), except that
 * `message_start` names the model the client asked for, as a JSON answer does.
 *
 * Each parsed event is shown to an observer on the way: billing's
 * AnthropicEventTally keeps what the ledger needs from it.
 */
import type { MessageStreamEvent } from '../../providers/anthropic/index.ts';
import { encodeFrame } from './anthropic-inbound-stream.ts';

export interface RawEvent {
  event: string;
  data: string;
}

/** Sees each event the relay could parse (billing's AnthropicEventTally). */
export interface RelayObserver {
  observe(event: MessageStreamEvent): void;
}

export class AnthropicEventRelay {
  readonly #model: string;
  readonly #observer: RelayObserver | undefined;

  constructor(clientModel: string, observer?: RelayObserver) {
    this.#model = clientModel;
    this.#observer = observer;
  }

  /** The frame to send for one upstream event. */
  relay(raw: RawEvent): string {
    const event = parseEvent(raw.data);
    if (event === undefined) return encodeFrame(raw.event, raw.data);
    this.#observer?.observe(event);
    const data =
      event.type === 'message_start'
        ? JSON.stringify({ ...event, message: { ...event.message, model: this.#model } })
        : raw.data;
    return encodeFrame(raw.event, data);
  }
}

/**
 * Events this relay reads are parsed; one it cannot parse is still relayed
 * as sent (the client's SDK is the judge of it), only not counted.
 */
function parseEvent(data: string): MessageStreamEvent | undefined {
  try {
    const value: unknown = JSON.parse(data);
    return typeof value === 'object' && value !== null ? (value as MessageStreamEvent) : undefined;
  } catch {
    return undefined;
  }
}
