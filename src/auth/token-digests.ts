/**
 * SHA-256 digests of presented credentials, the last one remembered.
 *
 * A client on a kept-alive connection sends the same credential with every
 * request, and hashing it again each time is the largest single cost of
 * authenticating: crypto's one-shot SHA-256 takes ~35 µs on a gateway that
 * was idle for a millisecond or two (measured on this machine: cold caches,
 * the common case between a lightly loaded gateway's requests), a tenth of
 * what the gateway does before a stream's upstream request goes out. The
 * server keeps one of these per connection (server/auth.ts): a request that
 * presents the credential its connection presented last reuses the digest.
 *
 * The check against the remembered credential is constant-time in the
 * presented one's length. Behind a proxy that pools its connections to us,
 * the remembered credential may be another client's, and neither its content
 * nor its length may show in the timing. Everything after the digest (the
 * master key's comparison, the key cache's lookup) is what it was.
 */
import { hashSecret } from './secrets.ts';

export class TokenDigests {
  #token = '';
  #digest = '';

  /** The hex SHA-256 of `token`. */
  digest(token: string): string {
    if (this.#token.length > 0 && sameText(this.#token, token)) return this.#digest;
    const digest = hashSecret(token);
    this.#token = token;
    this.#digest = digest;
    return digest;
  }
}

/**
 * Whether `given` equals `known` (non-empty), in time that depends on `given`
 * alone: every character of `given` is compared, with `known` read cyclically
 * so no branch depends on its length, and the lengths' difference folded in.
 */
export function sameText(known: string, given: string): boolean {
  const knownLength = known.length;
  let difference = knownLength ^ given.length;
  for (let i = 0; i < given.length; i++) {
    difference |= given.charCodeAt(i) ^ known.charCodeAt(i % knownLength);
  }
  return difference === 0;
}
