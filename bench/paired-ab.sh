#!/usr/bin/env bash
# A/B of gateway builds at compare.sh's 200 requests a second, measured side by side in one
# load with the harness's bare pass-through (bench/paired-rate.mjs: targets interleaved in
# every tick, so each sees the same machine state; sequential rounds drift here by more than
# most effects). Each variant is a checkout with its dist built, started as compare.sh starts
# the gateway (npm start's node flags, LOG_LEVEL=info, master key, SQLite ledger, one model ->
# the harness's mock upstream), pinned as compare.sh pins (CPU 1 the proxies, CPU 0 the rest).
#
#   bash bench/paired-ab.sh "before=/tmp/gw-old" "after=."            # from the project root
#   ROUNDS=4 DUR=10 bash bench/paired-ab.sh "a=." "b=.||SOME_ENV=1" "c=.|--some-node-flag"
#   variant: name=checkout[|extra node flags[|ENV=value ...]]
# Keep to two variants: with more, the proxies' core is busy enough to queue (each gateway
# request costs ~1 ms of CPU when cooled here). Prints, per round, each target's p50 and p90
# and its p50 over the pass-through's.
set -euo pipefail
. "$(dirname "$0")/harness-work.sh"
harness_work switchyard-paired
cp "$project/bench/paired-rate.mjs" "$work/"
# npm start's node flags: its command between `node` and the script.
flags=$(harness_start_cmd); flags=${flags#node }; flags=${flags%% bin/switchyard.js*}
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
cd "$work"
taskset -c 0 node mock-upstream.mjs --port=9100 --chunks=20 --interval=5 > /dev/null 2>&1 & PIDS+=($!)
taskset -c 1 env PORT=8801 IMPL=undici UPSTREAM=http://127.0.0.1:9100 node anchors/node-passthrough.mjs > /dev/null 2>&1 & PIDS+=($!)
targets=(pt=8801); ports=(9100 8801); port=18090
for variant in "$@"; do
  name=${variant%%=*}; IFS='|' read -r root extra envs <<< "${variant#*=}"
  root=$(cd "$project" && cd "$root" && pwd)
  data=$(mktemp -d "$work/data-$name.XXXX")
  harness_gateway_config "$work/gateway-$name.yaml" "$port" "$data"
  # shellcheck disable=SC2086 # flags and envs are word lists
  (cd "$root" && exec taskset -c 1 env PORT=$port SWITCHYARD_MASTER_KEY=sk-compare-master-0123456789 LOG_LEVEL=info $envs \
    "$project/node_modules/.bin/node" $flags $extra bin/switchyard.js start --config "$work/gateway-$name.yaml" \
    > "$work/gateway-$name.log" 2>&1) & PIDS+=($!)
  targets+=("$name=$port"); ports+=("$port"); port=$((port + 1))
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/"$p") 2>/dev/null && break; sleep 0.1; done
done
# Warm-up (JIT), unreported.
RATE=200 DUR=6 taskset -c 0 node paired-rate.mjs "${targets[@]}" > /dev/null
for r in $(seq 1 "${ROUNDS:-4}"); do
  echo "== round $r"
  RATE=200 DUR=${DUR:-10} taskset -c 0 node paired-rate.mjs "${targets[@]}"
done
