#!/usr/bin/env bash
# Runs a command with a private PostgreSQL: a fresh cluster in a temp dir, listening on a
# free loopback port, started before the command and stopped (and deleted) after it, pass
# or fail. The command gets ECHOPILOT_TEST_DATABASE_URL (a superuser's URL; each test
# makes its own database) and, for the chaos tests that restart it, ECHOPILOT_TEST_PG_CTL
# (a command that runs pg_ctl on this cluster: `$ECHOPILOT_TEST_PG_CTL restart`).
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if ! [ -x "$bin/initdb" ]; then
  echo "error: PostgreSQL's server programs are not installed; run scripts/install-tools.sh test" >&2
  exit 1
fi
work=$(mktemp -d /tmp/echopilot-pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb and postgres refuse to run as root: as root, the cluster belongs to `postgres`.
as_owner=""
if [ "$(id -u)" -eq 0 ]; then
  chown postgres "$work"
  as_owner="runuser -u postgres --"
fi
$as_owner "$bin/initdb" -D "$work/data" -A trust -U echopilot -E UTF8 --no-sync >"$work/initdb.log" 2>&1 \
  || { cat "$work/initdb.log" >&2; exit 1; }
pg_ctl="$as_owner $bin/pg_ctl -D $work/data -l $work/postgres.log -w"
# Tests: fsync off (a crashed test machine loses nothing that matters); benchmarks set
# ECHOPILOT_PG_DURABLE=1 and keep PostgreSQL's durable defaults. Room for many small
# pools, and the socket in our temp dir, not /var/run.
durability="-c fsync=off -c synchronous_commit=off"
[ "${ECHOPILOT_PG_DURABLE:-}" = 1 ] && durability=""
opts="${PG_EXTRA_OPTS:-} -c listen_addresses=127.0.0.1 -p $port -k $work $durability -c max_connections=400"
$pg_ctl -o "$opts" start >/dev/null || { cat "$work/postgres.log" >&2; exit 1; }
cleanup() {
  $pg_ctl -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export ECHOPILOT_TEST_DATABASE_URL="postgres://echopilot@127.0.0.1:$port/postgres"
export ECHOPILOT_TEST_PG_CTL="$pg_ctl -o '$opts'"
"$@"
