# EchoPilot. `make run` and `make test` work on a fresh Debian machine: they install what
# is missing first (scripts/install-tools.sh), skipping what is already there.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

BIND ?= 127.0.0.1:3000
DATA_DIR ?= ./data

.PHONY: run build tools test test-rust test-e2e chaos bench run-brief run-selfheal fmt lint clean

## Build and start EchoPilot on http://$(BIND) with SQLite in $(DATA_DIR).
run: build
	./target/release/echopilot serve --bind $(BIND) --data-dir $(DATA_DIR)

## Write the CEO brief now on the running server and print it.
run-brief:
	./target/release/echopilot run ceo-brief --wait

## Run the self-heal automation now on the running server and print its report.
run-selfheal:
	./target/release/echopilot run self-heal --wait

## Release build: the server binary and the dashboard (target/site); the dashboard only
## when its inputs changed (scripts/build.sh), so an unchanged tree restarts in seconds.
build: tools
	scripts/build.sh

tools:
	scripts/install-tools.sh build

## Every Rust test, then the Playwright suite in Debian's Chromium.
test:
	scripts/install-tools.sh test
	scripts/build.sh
	$(MAKE) test-rust
	$(MAKE) test-e2e

## Every Rust test, on a private PostgreSQL (started and stopped by the script): the
## workspace once (engine tests on SQLite, the store conformance suite and the chaos
## rounds on both), then the engine's integration tests again on PostgreSQL. The chaos
## round runs by itself: it restarts PostgreSQL, which would cut the other tests' sessions.
test-rust:
	cargo fmt --all -- --check
	scripts/with-postgres.sh bash -c '\
	  cargo test --workspace --exclude frontend --features echopilot/failpoints -- --skip cluster::chaos && \
	  cargo test -p echopilot --features echopilot/failpoints --test it -- cluster::chaos && \
	  ECHOPILOT_TEST_BACKEND=postgres cargo test -p engine --test it'

test-e2e:
	scripts/e2e.sh

## The chaos test's long run: 3 nodes (the release binary) on a private PostgreSQL, at
## least 200 faults and 100,000 every-second slots (~25 minutes); prints the table.
CHAOS_FAULTS ?= 200
CHAOS_SLOTS ?= 100000
CHAOS_JOBS ?= 80
chaos: build
	scripts/install-tools.sh test
	scripts/with-postgres.sh env ECHOPILOT_TEST_BIN=$(CURDIR)/target/release/echopilot \
	  ECHOPILOT_CHAOS_FAULTS=$(CHAOS_FAULTS) \
	  ECHOPILOT_CHAOS_SLOTS=$(CHAOS_SLOTS) ECHOPILOT_CHAOS_JOBS=$(CHAOS_JOBS) \
	  cargo test -p echopilot --test it -- cluster::chaos --nocapture

## Benchmarks with their figures printed (not a test; ~10 minutes).
bench: build
	scripts/bench.sh

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --exclude frontend --all-targets --features echopilot/failpoints -- -D warnings

clean:
	cargo clean
