#!/usr/bin/env bash
# START command for ../shared/bench: maps the harness's PORT/DASH_KEY/BIND onto
# echopilot's flags, with a fresh data dir and the benchmark hooks on.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
data=$(mktemp -d /tmp/echopilot-bench.XXXXXX)
DASHBOARD_KEY="$DASH_KEY" exec "$root/target/release/echopilot" serve --bench \
  --bind "$BIND" --data-dir "$data/data"
