#!/usr/bin/env bash
# compare.sh's harness judging a copy of its own floor: the bare Node pass-through
# (anchors/node-passthrough.mjs, the same code as node-pt-undici, on the same Node) started
# in the gateway's slot, so the verdict compares two identical proxies. What it reports is
# the harness's own resolution on this machine at this moment: how far apart two runs of the
# same code read (first byte above all, whose aim is a +0.3 ms difference). Run it next to
# compare.sh before reading a small first-byte difference as the gateway's.
#
#   bash bench/compare-aa.sh                 # from the project root; about 4 minutes a run
#   RUNS=3 HARNESS=/path/to/shared/bench bash bench/compare-aa.sh
set -euo pipefail
. "$(dirname "$0")/harness-work.sh"
harness_work switchyard-compare-aa
cd "$work"
for run in $(seq 1 "${RUNS:-1}"); do
  out=$work/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl
  # `node` as the harness starts its own pass-through (run-anchors.sh), so both sides run the same binary.
  GW_NAME=pt-as-gateway GW_PORT=18090 PORTKEY_DIR=/nonexistent \
    GW_CMD="env PORT=18090 IMPL=undici UPSTREAM=http://127.0.0.1:9100 node anchors/node-passthrough.mjs" \
    OUT="$out" ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-5} \
    ./run-anchors.sh > "$work/run.log" 2>&1 || { tail -20 "$work/run.log"; exit 1; }
  echo "run $run/${RUNS:-1} (raw: $out)"
  node verdict.mjs "$out" pt-as-gateway | tail -1 || true
done
