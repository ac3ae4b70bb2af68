# Sourced by the scripts that run compare.sh's harness (../shared/bench) on their own terms
# (compare-limited.sh, compare-aa.sh): checks it stands in the project root, copies the
# harness into a work directory of its own, installs what the harness needs, and refuses
# to start while a port it uses is taken.
#   harness_work <name>   sets project, harness and work (${TMPDIR:-/tmp}/<name>)
harness_work() {
  project=$PWD
  [ -f "$project/package.json" ] && [ -f "$project/bin/switchyard.js" ] || { echo "run from the project root"; exit 2; }
  harness=$(cd "${HARNESS:-$project/../shared/bench}" && pwd)
  work=${TMPDIR:-/tmp}/$1; mkdir -p "$work"
  cp -r "$harness"/*.mjs "$harness"/*.sh "$harness"/package*.json "$harness"/anchors "$work"/
  command -v nginx >/dev/null && command -v wrk >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq nginx wrk >/dev/null; }
  (cd "$work" && [ -d node_modules ] || npm ci --no-audit --no-fund --silent)
  for port in 18090 9100 9200 8801 8802 8803; do
    (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && { echo "port $port is busy (a leftover from an earlier run?)"; exit 1; }
  done
  return 0
}

# The gateway config compare.sh writes (one model -> the harness's mock upstream, master key
# from the environment), for the scripts that start the gateway themselves.
#   harness_gateway_config <file> <port> <data_dir>
harness_gateway_config() {
  cat > "$1" <<YAML
server: { host: 127.0.0.1, port: $2 }
data_dir: $3
master_key: \${SWITCHYARD_MASTER_KEY}
providers:
  up: { type: openai, base_url: http://127.0.0.1:9100/v1, api_key: bench-upstream-key }
models:
  gpt-4o-mini: { targets: [ { provider: up, model: gpt-4o-mini } ] }
YAML
}

# The command `npm start` runs the gateway with, as compare.sh reads it (the start script's
# last `&&` part: `node <flags> bin/switchyard.js start`).
harness_start_cmd() {
  (cd "$project" && node -e 'console.log(require("./package.json").scripts.start.split("&&").pop().trim())')
}
