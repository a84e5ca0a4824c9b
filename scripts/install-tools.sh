#!/usr/bin/env bash
# Installs what building and testing EchoPilot needs on a fresh Debian machine, skipping
# whatever is already there. See ../shared/TOOLCHAIN.md for why each step looks the way it
# does. Usage: scripts/install-tools.sh [build|test]
#   build: wasm32 target, wasm-bindgen CLI, wasm-opt (npm binaryen), cargo-leptos
#   test:  the above, plus Debian's chromium and postgresql, and the end2end npm packages
set -euo pipefail
what=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

WASM_BINDGEN_VERSION=0.2.130
CARGO_LEPTOS_VERSION=0.3.11
BINARYEN_VERSION=132

say() { printf '==> %s\n' "$*" >&2; }
need_root() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm from Debian"
  $(need_root) apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $(need_root) apt-get install -y -qq nodejs npm
fi

if ! wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION"; then
  # Debian's binaryen (wasm-opt 108) silently breaks the bundle; npm's build is right.
  say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
  $(need_root) npm install -g --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
fi

if ! wasm-bindgen --version 2>/dev/null | grep -q "$WASM_BINDGEN_VERSION"; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes)"
  # Not --locked: its lockfile names a webpki-roots version missing from the index.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 18 minutes on 2 cores)"
  # `cargo install --locked` fails on Rust 1.95: the lock pins cargo-util-schemas 0.14.2,
  # which needs rustc 1.96. Fetch the published source through cargo, pin 0.14.1, build.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  mkdir -p "$scratch/fetch/src"
  cat > "$scratch/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-cargo-leptos"
version = "0.0.0"
edition = "2021"
[dependencies]
cargo-leptos = "=$CARGO_LEPTOS_VERSION"
TOML
  : > "$scratch/fetch/src/lib.rs"
  (cd "$scratch/fetch" && cargo fetch -q) || true
  src=$(ls -d "$HOME"/.cargo/registry/src/*/cargo-leptos-"$CARGO_LEPTOS_VERSION" | head -n1)
  cp -r "$src" "$scratch/cargo-leptos"
  cd "$scratch/cargo-leptos"
  cargo update -q -p cargo-util-schemas --precise 0.14.1
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install --path . --locked --features no_downloads
  cd "$root"
fi

if [ "$what" = test ]; then
  if ! [ -x /usr/bin/chromium ]; then
    say "installing Debian's chromium"
    $(need_root) apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $(need_root) apt-get install -y -qq chromium
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    # The tests start a private cluster of their own (scripts/with-postgres.sh); the
    # package's default cluster is not used.
    say "installing Debian's postgresql"
    $(need_root) apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $(need_root) apt-get install -y -qq postgresql
  fi
  # Again whenever the lock changed since the last install.
  stamp="$root/end2end/node_modules/.installed-from-lock"
  if ! cmp -s "$root/end2end/package-lock.json" "$stamp"; then
    say "installing the end2end npm packages"
    (cd "$root/end2end" && npm ci --no-audit --no-fund && cp package-lock.json "$stamp")
  fi
fi
say "tools ready"
