/**
 * A flood of small chat requests from many concurrent clients, spread round
 * robin over `targets` (gateway instances, or one load balancer in front of
 * them): the multi-instance limit tests count what was admitted.
 */
export interface FloodOptions {
  requests: number;
  /** Clients sending at once, each one request at a time. */
  clients: number;
}

/** Sends the requests with `key`; returns how many got each status. */
export async function floodChat(
  targets: ReadonlyArray<{ baseUrl: string }>,
  key: string,
  body: Record<string, unknown>,
  { requests, clients }: FloodOptions,
): Promise<Record<number, number>> {
  const statuses: Record<number, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests) {
        const target = targets[next++ % targets.length]!;
        const res = await fetch(`${target.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'mock', messages: [{ role: 'user', content: 'ping' }], ...body }),
        });
        await res.arrayBuffer();
        statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      }
    }),
  );
  return statuses;
}
