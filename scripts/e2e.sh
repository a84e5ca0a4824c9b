#!/usr/bin/env bash
# Runs the Playwright suite against the release build: a real server on a free loopback
# port with a fresh data dir, stopped (SIGTERM) when the suite ends, pass or fail.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=target/release/echopilot
[ -x "$bin" ] || { echo "error: $bin is missing; run 'make build' first" >&2; exit 1; }

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="e2e-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
DASHBOARD_KEY="$key" "$bin" serve --bind "127.0.0.1:$port" --data-dir "$work/data" --http-allow 127.0.0.1 \
  > "$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

url="http://127.0.0.1:$port"
for _ in $(seq 1 300); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null || { echo "error: server did not come up" >&2; cat "$work/server.log" >&2; exit 1; }

cd end2end
BASE_URL="$url" DASHBOARD_KEY="$key" npx playwright test "$@" || {
  echo "---- server log ----" >&2; tail -n 50 "$work/server.log" >&2; exit 1; }
