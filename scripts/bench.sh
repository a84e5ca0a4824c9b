#!/usr/bin/env bash
# `make bench`: prints the engine's figures against the issue's targets, the lateness of
# tokio-cron-scheduler for the record in docs/decisions/, and EchoPilot side by side with
# the seed's Flask + APScheduler stack through ../shared/bench (ratios EchoPilot / Flask).
# Takes ~10 minutes; keep the machine otherwise idle.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
shared_bench=${SHARED_BENCH:-$root/../shared/bench}
# The harness's venvs, node_modules and results go here, never into shared/.
export BENCH_WORK=${BENCH_WORK:-/tmp/echopilot-bench}

echo "== dashboard: WASM bundle size (release build)"
wasm=target/site/pkg/echopilot.wasm
echo "{\"figure\": \"wasm_bundle_gzipped_kib\", \"raw_kib\": $(( $(stat -c %s "$wasm") / 1024 )), \"gzip_kib\": $(( $(gzip -9 -c "$wasm" | wc -c) / 1024 )), \"target\": \"<= 200\"}"

echo "== engine: runs/s into SQLite, GET /api/runs and the overview's server render with 1M runs"
cargo bench -p echopilot --bench engine

echo "== tokio-cron-scheduler: lateness of an every-second job (30 s)"
(cd bench/tcs-probe && cargo run --release --quiet -- 30)

if [ ! -d "$shared_bench" ]; then
  echo "== $shared_bench not found: skipping the side-by-side comparison"
  exit 0
fi
echo "== side by side with the seed stack ($shared_bench)"
"$shared_bench/setup.sh"
target=$(mktemp -d)/echopilot.env
cat > "$target" <<ENV
NAME=echopilot
PORT=18080
KEY=bench-key-0123456789
START=$root/scripts/bench-serve.sh
ENV
"$shared_bench/compare.sh" "$target" "$shared_bench/targets/flask_w2.env" \
  --rounds "${BENCH_ROUNDS:-1}" --jitter "${BENCH_JITTER:-60}" --duration 10
