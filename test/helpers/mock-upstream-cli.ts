/**
 * Runs the mock upstream as its own process, so the benchmark can pin it to a core apart
 * from the gateway under test.
 *
 *   node test/helpers/mock-upstream-cli.ts --port 0 [--frames N] [--frame-delay-ms MS] [--require-api-key KEY] [--record]
 *
 * Prints one JSON line `{"port":N}` on stdout once listening, and nothing else (so the
 * parent can parse it). Recording is off by default: nobody can read it from outside, and
 * at benchmark rates it would only grow memory. Stops cleanly on SIGTERM or SIGINT.
 */

import { parseArgs } from 'node:util';
import { type MockUpstreamOptions, startMockUpstream } from './mock-upstream.ts';

function nonNegative(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`mock-upstream-cli: --${name} must be a non-negative integer, got "${v}"\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    frames: { type: 'string' },
    'frame-delay-ms': { type: 'string' },
    'require-api-key': { type: 'string' },
    record: { type: 'boolean', default: false },
  },
  strict: true,
});

const options: MockUpstreamOptions = { port: nonNegative('port', values.port) ?? 0, record: values.record };
const frames = nonNegative('frames', values.frames);
if (frames !== undefined) options.frames = frames;
const frameDelayMs = nonNegative('frame-delay-ms', values['frame-delay-ms']);
if (frameDelayMs !== undefined) options.frameDelayMs = frameDelayMs;
if (values['require-api-key'] !== undefined) options.requireApiKey = values['require-api-key'];

const mock = await startMockUpstream(options);
process.stdout.write(`${JSON.stringify({ port: mock.port })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  mock.close().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`mock-upstream-cli: close failed: ${String(err)}\n`);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
