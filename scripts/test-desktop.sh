#!/usr/bin/env bash
# The desktop window end to end: builds `flowkeep` with the `native` feature,
# starts it under its own Xvfb (scripts/with-xvfb.sh) and drives it with tauri-driver + WebKitWebDriver.
# Needs what scripts/deps.sh lists for the window (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
[ -d "$HOME/.cargo/bin" ] && export PATH="$PATH:$HOME/.cargo/bin"
missing="$(window_test_missing)"
if [ -n "$missing" ]; then
  echo "the desktop window test needs: $missing"
  exit 1
fi

cargo build --locked --features native --bin flowkeep
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
# The native build is kept apart so the browser tests' binary stays the plain one.
native_bin="$target_dir/debug/flowkeep-native"
cp "$target_dir/debug/flowkeep" "$native_bin"
log="$(mktemp)"
(cd desktop/ui && FLOWKEEP_NATIVE_BIN="$native_bin" TAURI_DRIVER="$(command -v tauri-driver)" \
  bash ../../scripts/with-xvfb.sh node --test --test-concurrency=1 e2e-native/window.webdriver.mjs) | tee "$log"
pass=$(grep -cE '^ok [0-9]+ ' "$log" || true)
fail=$(grep -cE '^not ok [0-9]+ ' "$log" || true)
echo "desktop window tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
