#!/usr/bin/env bash
# Runs every test. Installs the JavaScript client the interop test uses
# (exact versions from tests/js-interop/package-lock.json), then the Rust
# tests of the whole workspace (unit, integration with real processes on
# 127.0.0.1, the multi-device sync tests).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "node is needed for the JS interop test (apt-get install nodejs npm)"; exit 1; }
(cd tests/js-interop && npm ci --no-audit --no-fund --loglevel=error)
cargo test --workspace --locked "$@"
