/**
 * The optional separate metrics listener (`server.metrics_port`): GET /metrics
 * on its own port, so scrapes can be allowed by a network policy that keeps
 * the API port closed (or the other way round), and the main port stops
 * serving /metrics. It serves nothing else (404) and needs no Fastify.
 */
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { GatewayMetrics } from '../observability/metrics.ts';

// Through require, as app.ts explains: an ESM import of node:http loads Node's bundled undici.
const { createServer } = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export async function startMetricsServer(
  metrics: GatewayMetrics,
  host: string,
  port: number,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this port serves GET /metrics\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n'),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    address: server.address() as AddressInfo,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
