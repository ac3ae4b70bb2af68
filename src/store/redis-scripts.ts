/**
 * Lua scripts kept as files, `src/store/lua/<name>-<numberOfKeys>.lua`, each
 * opening with its contract (KEYS, ARGV, output, why it must be atomic;
 * test/unit/lua-scripts.test.ts holds every file to that). The key count is in
 * the file name so a caller cannot pass the wrong number of keys.
 *
 * A script is defined once per connection with ioredis `defineCommand`, which
 * sends EVALSHA and the full text only the first time on each socket (or
 * after a NOSCRIPT, when Redis restarted or flushed its script cache).
 *
 * The files are read next to this module: from `src/store/lua/` when the
 * sources run directly, from `dist/store/lua/` in the build (the build copies
 * them: scripts/copy-assets.ts), so both checkouts and installed packages
 * find them.
 */
import { readFileSync } from 'node:fs';
import type { RedisConnection } from './redis.ts';

const LUA_DIR = new URL('./lua/', import.meta.url);
const FILE_NAME = /^[a-z][a-z0-9-]*-(\d+)$/;

export interface LuaScript {
  /** The file name without `.lua`, such as `breaker-publish-1`. */
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

/** Runs the script with exactly `numberOfKeys` keys, then its arguments. */
export type ScriptCall = (keys: readonly string[], args?: readonly (string | number)[]) => Promise<unknown>;

const loaded = new Map<string, LuaScript>();

/** Reads `lua/<name>.lua` (once per process). */
export function luaScript(name: string): LuaScript {
  let script = loaded.get(name);
  if (!script) {
    const match = FILE_NAME.exec(name);
    if (!match) throw new TypeError(`Lua script name '${name}' must end in -<number of keys>`);
    const lua = readFileSync(new URL(`${name}.lua`, LUA_DIR), 'utf8');
    script = { name, numberOfKeys: Number(match[1]), lua };
    loaded.set(name, script);
  }
  return script;
}

/** Commands already defined on each connection. */
const definedOn = new WeakMap<RedisConnection, Set<string>>();

type Commands = Record<string, (...args: Array<string | number>) => Promise<unknown>>;

/**
 * Defines script `name` on `redis` (once per connection) and returns a typed
 * way to run it. Command names are namespaced (`lua:<name>`) so they never
 * shadow an ioredis method.
 */
export function defineScript(redis: RedisConnection, name: string): ScriptCall {
  const script = luaScript(name);
  const command = `lua:${script.name}`;
  let names = definedOn.get(redis);
  if (!names) {
    names = new Set();
    definedOn.set(redis, names);
  }
  if (!names.has(command)) {
    redis.defineCommand(command, { lua: script.lua, numberOfKeys: script.numberOfKeys });
    names.add(command);
  }
  const run = (redis as unknown as Commands)[command]!.bind(redis);
  return (keys, args = []) => {
    if (keys.length !== script.numberOfKeys) {
      return Promise.reject(
        new TypeError(`${script.name} takes ${script.numberOfKeys} keys, got ${keys.length}`),
      );
    }
    return run(...keys, ...args);
  };
}
