/**
 * Gateway instances as a load balancer sees them: each `switchyard start`
 * process on a loopback port of its own that outlives the process, so an
 * instance can be stopped (drained or killed) and started again at the same
 * address, as a rolling restart or a supervisor does.
 */
import { type SpawnedGateway, type SpawnOptions, spawnGateway } from './gateway.ts';
import { freePort } from './services.ts';

export interface Fleet {
  readonly ports: readonly number[];
  /** The running process of instance `i` (replaced by restart). */
  instance(i: number): SpawnedGateway;
  /** Starts instance `i` (all of them with no argument) on its port. */
  start(i?: number): Promise<void>;
  /** Signals instance `i` and waits for its exit; resolves with the exit code or signal name. */
  stop(i: number, signal?: NodeJS.Signals): Promise<number | string>;
  /** Stops instance `i` with `signal`, then starts it again on the same port. */
  restart(i: number, signal?: NodeJS.Signals): Promise<number | string>;
  /** SIGTERM to every running instance; resolves once all have exited. */
  close(): Promise<void>;
}

/** `size` instances sharing `options` (config, environment, master key); none started yet. */
export async function createFleet(size: number, options: SpawnOptions): Promise<Fleet> {
  const ports: number[] = [];
  // Distinct ports: freePort may hand the same one out twice before anything binds it.
  while (ports.length < size) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const running: Array<SpawnedGateway | undefined> = Array.from({ length: size }, () => undefined);
  const startOne = async (i: number): Promise<void> => {
    running[i] = await spawnGateway({ ...options, env: { ...options.env, PORT: String(ports[i]) } });
  };
  const stopOne = async (i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> => {
    const gw = running[i];
    if (gw === undefined) throw new Error(`instance ${i} is not running`);
    running[i] = undefined;
    if (gw.child.exitCode === null && gw.child.signalCode === null) gw.kill(signal);
    return gw.exited;
  };
  return {
    ports,
    instance(i) {
      const gw = running[i];
      if (gw === undefined) throw new Error(`instance ${i} is not running`);
      return gw;
    },
    async start(i) {
      if (i !== undefined) return startOne(i);
      await Promise.all(ports.map((_, j) => startOne(j)));
    },
    stop: stopOne,
    async restart(i, signal = 'SIGTERM') {
      const code = await stopOne(i, signal);
      await startOne(i);
      return code;
    },
    async close() {
      await Promise.all(running.flatMap((gw, i) => (gw === undefined ? [] : [stopOne(i)])));
    },
  };
}
