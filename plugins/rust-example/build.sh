#!/usr/bin/env bash
# Builds the plugin binary into bin/, where plugin.toml's entrypoint expects it.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -p tessera-rust-example
target="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
install -D -m 0755 "$target/release/tessera-rust-example" bin/tessera-rust-example
echo "built bin/tessera-rust-example"
