#!/usr/bin/env bash
# The desktop window end to end: builds `flowkeep` with the `native` feature,
# starts it under Xvfb and drives it with tauri-driver + WebKitWebDriver.
# Needs: apt-get install libwebkit2gtk-4.1-dev libsoup-3.0-dev
#   libjavascriptcoregtk-4.1-dev librsvg2-dev xvfb webkit2gtk-driver
# and: cargo install tauri-driver --locked
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v xvfb-run >/dev/null || missing+=("xvfb (apt-get install xvfb)")
command -v WebKitWebDriver >/dev/null || missing+=("WebKitWebDriver (apt-get install webkit2gtk-driver)")
command -v tauri-driver >/dev/null || missing+=("tauri-driver (cargo install tauri-driver --locked)")
pkg-config --exists webkit2gtk-4.1 2>/dev/null || missing+=("WebKitGTK headers (apt-get install libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev)")
if [ ${#missing[@]} -gt 0 ]; then
  printf 'the desktop window test needs: %s\n' "${missing[@]}"
  exit 1
fi

cargo build --locked --features native --bin flowkeep
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
# The native build is kept apart so the browser tests' binary stays the plain one.
native_bin="$target_dir/debug/flowkeep-native"
cp "$target_dir/debug/flowkeep" "$native_bin"
log="$(mktemp)"
(cd desktop/ui && FLOWKEEP_NATIVE_BIN="$native_bin" TAURI_DRIVER="$(command -v tauri-driver)" \
  xvfb-run -a node --test --test-concurrency=1 e2e-native/window.webdriver.mjs) | tee "$log"
pass=$(grep -cE '^ok [0-9]+ ' "$log" || true)
fail=$(grep -cE '^not ok [0-9]+ ' "$log" || true)
echo "desktop window tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
