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

echo "== dashboard: WASM (release build, split per page; gzip -9)"
# The main file holds the router and the hydration runtime; each page's view is a chunk
# fetched when the page is first shown. The figure that counts is what a first visit to a
# page downloads: measured in Chromium by end2end/tests/bundle.spec.ts.
gz_kib() { for f in "$@"; do gzip -9 -c "$f" | wc -c; done | awk '{s += $1} END {print int(s / 1024)}'; }
echo "{\"figure\": \"wasm_main_file\", \"gzip_kib\": $(gz_kib target/site/pkg/echopilot.wasm)}"
chunks=$(find target/site/pkg -name '*.wasm')
echo "{\"figure\": \"wasm_all_files\", \"files\": $(echo "$chunks" | wc -l), \"gzip_kib_summed\": $(gz_kib $chunks)}"
scripts/e2e.sh tests/bundle.spec.ts >/dev/null
echo "{\"figure\": \"wasm_first_visit_gzip_kib\", \"target\": \"<= 200\", \"pages\": $(tr -d ' \n' < end2end/test-results/bundle.json)}"

echo "== engine: runs/s into SQLite, GET /api/runs and the overview's server render with 1M runs"
cargo bench -p echopilot --bench engine

echo "== several nodes: 3 nodes' manual runs/s on one PostgreSQL, the leader's every-second lateness"
# A private PostgreSQL with its durable defaults (fsync, synchronous commit).
ECHOPILOT_PG_DURABLE=1 scripts/with-postgres.sh cargo bench -p echopilot --bench cluster

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
