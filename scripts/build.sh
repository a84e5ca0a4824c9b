#!/usr/bin/env bash
# The release build: the server binary and the dashboard (target/site). The dashboard —
# wasm-bindgen and wasm-opt over the WASM, about two minutes on 2 cores — is rebuilt only
# when its inputs changed since the last full build (their digest is kept next to it);
# otherwise only the server is built, which cargo makes a no-op on an unchanged tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
stamp=target/site/.dashboard-inputs

# What the WASM and the site are made from: the crates compiled to WASM, the styles and
# assets, the workspace manifest and lock (versions, profiles, the leptos metadata), the
# tools' versions and this script.
inputs() {
  {
    find app frontend style public -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum Cargo.toml Cargo.lock scripts/build.sh
    cargo leptos --version
    wasm-bindgen --version
    wasm-opt --version
  } | sha256sum | cut -d' ' -f1
}

want=$(inputs)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d target/site/pkg ]; then
  echo "==> the dashboard is up to date (its inputs did not change); building the server only" >&2
  cargo leptos build --release --split --server-only
else
  rm -f "$stamp"
  cargo leptos build --release --split
  echo "$want" > "$stamp"
fi
