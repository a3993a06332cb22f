#!/usr/bin/env bash
# Runs every test, after installing what they need (scripts/deps.sh: as root
# or with password-less sudo; otherwise it says what it could not install):
#   1. the web UI's type check and unit tests (Vitest),
#   2. the Rust tests of the whole workspace (unit, integration with real
#      processes on 127.0.0.1, multi-device sync, the JS interop client),
#      and of the crates we carry patched (vendor/),
#   3. the browser tests: Debian's Chromium (playwright-core, headless)
#      driving a real `flowkeep ui`; screenshots go to target/ui-screenshots/,
#   4. the desktop window under Xvfb (scripts/test-desktop.sh).
# A part that cannot run here is skipped and named in the last line, which
# then says "skipped"; nothing is skipped silently.
# Arguments are passed to `cargo test` (e.g. `bash scripts/test.sh -- sync`).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
install_test_deps

command -v node >/dev/null && command -v npm >/dev/null || {
  echo "node and npm are needed to build the web UI (apt-get install nodejs npm)"; exit 1; }
chromium="${CHROMIUM:-/usr/bin/chromium}"

# Exact versions from the lockfiles.
(cd tests/js-interop && npm ci --no-audit --no-fund --loglevel=error)
(cd desktop/ui && npm ci --no-audit --no-fund --loglevel=error)

# Prints "<name>: N passed, M failed" from TAP output; fails if M > 0.
tap_summary() {
  local name="$1" log="$2" pass fail
  pass=$(grep -cE '^ *ok [0-9]+ ' "$log" || true)
  fail=$(grep -cE '^ *not ok [0-9]+ ' "$log" || true)
  echo "$name: $pass passed, $fail failed"
  [ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
}

echo "== web UI: type check and unit tests"
(cd desktop/ui && npm run -s typecheck)
ui_log="$(mktemp)"
(cd desktop/ui && npx vitest run --reporter=tap-flat) | tee "$ui_log"
tap_summary "ui unit tests" "$ui_log"

echo "== Rust tests"
cargo test --workspace --locked "$@"

# The crates we carry patched are not workspace members; their tests (ours
# for the patches, and upstream's) run here so a change cannot break them
# unseen. samod without its `threadpool` runner, which we do not use
# (vendor/README.md: one of its upstream tests is flaky on this machine).
echo "== patched dependencies (vendor/README.md)"
cargo test --manifest-path vendor/samod-core/Cargo.toml --locked --lib
cargo test --manifest-path vendor/samod/Cargo.toml --locked --features tokio,axum \
  --config "patch.crates-io.samod-core.path=\"$PWD/vendor/samod-core\"" \
  --lib --test smoke --test share_policy --test streaming_share_policy --test connector_integration \
  --test axum_transport --test sink_error --test tokio_storage_test --test tincans --test unload_idle --test stored \
  --test actor_failure

target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
if [ -x "$chromium" ]; then
  echo "== browser tests"
  cargo build --locked --bin flowkeep --bin flowkeep-sync-server
  e2e_log="$(mktemp)"
  (cd desktop/ui && FLOWKEEP_BIN="$target_dir/debug/flowkeep" CHROMIUM="$chromium" npm run -s e2e) | tee "$e2e_log"
  # Top-level tests only (subtests are indented).
  tap_summary "browser tests" <(grep -E '^(not )?ok ' "$e2e_log")
fi

if [ -z "$(window_test_missing)" ]; then
  echo "== desktop window tests"
  bash scripts/test-desktop.sh
fi

if [ ${#SKIPPED[@]} -gt 0 ]; then
  for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
  echo "test.sh: done, but ${#SKIPPED[@]} part(s) skipped (see above)"
else
  echo "test.sh: every part ran"
fi
