/**
 * Ids of the Responses API, shaped as OpenAI's are: a type prefix
 * (`resp_`, `msg_`, `fc_`…) and random characters. A response id is also
 * the key of its stored row, so it is unguessable (144 random bits).
 */
import { randomBytes } from 'node:crypto';

export function newResponseId(): string {
  return `resp_${randomBytes(18).toString('hex')}`;
}

export function newItemId(prefix: string): string {
  return `${prefix}_${randomBytes(18).toString('hex')}`;
}
