#!/usr/bin/env bash
# compare.sh's side-by-side run with limits and a budget on the key: the same harness
# (../shared/bench: run-anchors.sh, bench.mjs, summarize.mjs, verdict.mjs), the same
# gateway start command and config, except that the load comes with a virtual key that
# carries request and token windows per minute, a cap on requests in flight and daily
# and monthly budgets, all high enough never to refuse (a refusal would count as an error
# in the verdict) but checked and charged on every request. compare.sh itself sends the
# master key, which no limit applies to.
#
#   bash bench/compare-limited.sh            # from the project root; about 5 minutes
#   ROUNDS=3 DURATION=8 HARNESS=/path/to/shared/bench bash bench/compare-limited.sh
set -euo pipefail
. "$(dirname "$0")/harness-work.sh"
harness_work switchyard-compare-limited
node=$project/node_modules/.bin/node
(cd "$project" && npm run build --silent >/dev/null)

master=sk-compare-master-0123456789
cfg=$work/gateway.yaml; data=$(mktemp -d "$work/data.XXXX")
harness_gateway_config "$cfg" 18090 "$data"

# The key, made through the admin API of a gateway started once for it (it is kept in
# the data directory the measured gateway then opens).
env PORT=18090 SWITCHYARD_MASTER_KEY=$master LOG_LEVEL=warn "$node" "$project/bin/switchyard.js" start --config "$cfg" \
  > "$work/setup.log" 2>&1 &
setup_pid=$!
trap 'kill $setup_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do (echo > /dev/tcp/127.0.0.1/18090) 2>/dev/null && break; sleep 0.1; done
key=$(curl -sf -X POST http://127.0.0.1:18090/admin/keys -H "authorization: Bearer $master" \
  -H 'content-type: application/json' -d '{
    "name": "compare-limited",
    "limits": { "requests_per_minute": 100000000, "tokens_per_minute": 100000000000, "max_concurrent": 10000 },
    "budget": { "daily_usd": 1000000, "monthly_usd": 10000000 }
  }' | "$node" -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).key))')
kill "$setup_pid"; wait "$setup_pid" 2>/dev/null || true
trap - EXIT
[ -n "$key" ] || { echo "could not create the key"; exit 1; }

start_cmd=$(harness_start_cmd)
start_cmd="${start_cmd/#node /$node }"
start_cmd="${start_cmd/ bin\/switchyard.js/ $project/bin/switchyard.js}"
out=$work/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl
(cd "$work" && GW_NAME=switchyard GW_PORT=18090 PORTKEY_DIR=/nonexistent \
  GW_CMD="env PORT=18090 SWITCHYARD_MASTER_KEY=$master LOG_LEVEL=info $start_cmd --config $cfg" \
  GW_HEADERS="authorization: Bearer $key" OUT="$out" ROUNDS=${ROUNDS:-2} DURATION=${DURATION:-5} \
  ./run-anchors.sh > "$work/run.log" 2>&1) || { tail -20 "$work/run.log"; exit 1; }
cd "$work"
node summarize.mjs "$out"
echo
"$node" -e '
  const { DatabaseSync } = require("node:sqlite");
  const db = new DatabaseSync(process.argv[1] + "/switchyard.db", { readOnly: true });
  const r = db.prepare("SELECT COUNT(*) AS rows, SUM(cost_micros) AS micros FROM usage_ledger WHERE key_id IS NOT NULL").get();
  console.log(`ledger: ${r.rows} rows charged to the key, $${(Number(r.micros ?? 0) / 1e6).toFixed(2)} spent`);
' "$data"
echo "raw: $out"
node verdict.mjs "$out" switchyard
