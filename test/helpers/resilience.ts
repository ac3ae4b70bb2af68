/**
 * Helpers for resilience tests: chat calls that expose the gateway's
 * `x-switchyard-*` dispatch headers, a port with nothing listening, and the
 * ledger rows of a gateway.
 */
import { createServer } from 'node:net';
import type { TestGateway } from './gateway.ts';

export interface ChatResult {
  status: number;
  target: string | null;
  attempts: number;
  fallbackReason: string | null;
  retryAfter: string | null;
  body: { error?: { code: string; type: string; message: string }; choices?: unknown[] };
}

export async function chat(
  url: string,
  key: string,
  model: string,
  content = 'hello',
  extra: Record<string, unknown> = {},
): Promise<ChatResult> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], ...extra }),
  });
  const text = await res.text();
  return {
    status: res.status,
    target: res.headers.get('x-switchyard-target'),
    attempts: Number(res.headers.get('x-switchyard-attempts') ?? 'NaN'),
    fallbackReason: res.headers.get('x-switchyard-fallback-reason'),
    retryAfter: res.headers.get('retry-after'),
    body: extra['stream'] === true && res.status === 200 ? { choices: [] } : JSON.parse(text),
  };
}

/** A loopback port with nothing listening on it. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface LedgerAttemptRow {
  request_id: string;
  /** The x-request-id the client sent, if any. */
  client_request_id: string | null;
  attempt: number;
  provider: string | null;
  status: string;
  error_code: string | null;
  prompt_tokens: number;
  usage_source: string;
}

/** Every ledger row written so far (the queue is flushed first). */
export async function ledgerRows(gw: TestGateway): Promise<LedgerAttemptRow[]> {
  const { ledger, database } = gw.gateway.context;
  await ledger.flush();
  const rows = await database.db
    .selectFrom('usage_ledger')
    .select([
      'request_id',
      'client_request_id',
      'attempt',
      'provider',
      'status',
      'error_code',
      'prompt_tokens',
      'usage_source',
    ])
    .orderBy('created_at')
    .execute();
  return rows as LedgerAttemptRow[];
}

/** The value of one Prometheus sample line, or undefined. */
export async function metricValue(gw: TestGateway, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}
