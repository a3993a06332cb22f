#!/usr/bin/env bash
# The one list of what the tests need beyond Rust, and how to install it.
# Sourced by scripts/test.sh (and so by .ci/run, which calls test.sh).
#
#   install_test_deps   installs what is missing when it can (as root, or
#                       with sudo without a password); sets SKIPPED to the
#                       parts of the suite that cannot run and why.

# Debian/Ubuntu packages: tools the tests and acceptance scripts call, the
# browser for the browser tests, PostgreSQL for the sync server's shared
# storage (the tests start their own throwaway clusters), WebKitGTK to
# build the desktop window, Xvfb and WebKitWebDriver to drive it.
TEST_APT_PACKAGES=(
  sqlite3 python3 curl openssl nodejs npm pkg-config
  chromium postgresql
  libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev
  xvfb webkit2gtk-driver
  dbus gnome-keyring
)
SKIPPED=()

_as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

# A package counts as present when its program is on PATH (Node.js or
# Python installed some other way must not be replaced by Debian's).
_present() {
  case "$1" in
    sqlite3|python3|curl|openssl|npm|pkg-config) command -v "$1" >/dev/null ;;
    nodejs) command -v node >/dev/null ;;
    chromium) [ -x "${CHROMIUM:-/usr/bin/chromium}" ] ;;
    postgresql) postgres_bin >/dev/null ;;
    xvfb) command -v Xvfb >/dev/null && command -v xauth >/dev/null ;;
    webkit2gtk-driver) command -v WebKitWebDriver >/dev/null ;;
    dbus) command -v dbus-run-session >/dev/null ;;
    gnome-keyring) command -v gnome-keyring-daemon >/dev/null ;;
    *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed" ;;
  esac
}

_missing_packages() {
  local pkg
  for pkg in "${TEST_APT_PACKAGES[@]}"; do
    _present "$pkg" || echo "$pkg"
  done
}

install_test_deps() {
  local missing
  mapfile -t missing < <(_missing_packages)
  if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
      echo "== not a Debian/Ubuntu machine: cannot install ${missing[*]} (install them by hand)"
    elif _as_root true; then
      echo "== installing: ${missing[*]}"
      _as_root apt-get update -qq || true
      _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" ||
        echo "== apt-get install failed for some of: ${missing[*]}"
    else
      echo "== not root and no password-less sudo: cannot install ${missing[*]}"
    fi
  fi
  if ! command -v tauri-driver >/dev/null && [ -x "$HOME/.cargo/bin/tauri-driver" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v tauri-driver >/dev/null; then
    # From crates.io: WebDriver for the Tauri window.
    echo "== installing tauri-driver (cargo install)"
    cargo install tauri-driver --locked --quiet || echo "== cargo install tauri-driver failed"
  fi

  # What still cannot run, and why: said in the summary, never a silent pass.
  [ -x "${CHROMIUM:-/usr/bin/chromium}" ] ||
    SKIPPED+=("browser tests (no Chromium at ${CHROMIUM:-/usr/bin/chromium}: apt-get install chromium)")
  if ! postgres_bin >/dev/null; then
    SKIPPED+=("sync server tests on PostgreSQL (no initdb/pg_ctl: apt-get install postgresql)")
    # The tests then say "skipped" instead of failing on what is missing.
    export FLOWKEEP_SKIP_POSTGRES_TESTS=1
  fi
  if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-run-session >/dev/null; then
    SKIPPED+=("the OS keychain test (no gnome-keyring or dbus-run-session: apt-get install dbus gnome-keyring)")
    export FLOWKEEP_SKIP_KEYCHAIN_TEST=1
  fi
  local window
  window="$(window_test_missing)"
  [ -z "$window" ] || SKIPPED+=("desktop window tests (missing: $window)")
  return 0
}

# Where PostgreSQL's initdb and pg_ctl are (Debian keeps them off PATH).
postgres_bin() {
  local d
  for d in "$(dirname "$(command -v initdb 2>/dev/null || echo /none/x)")" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

# What the desktop window test lacks on this machine (empty: nothing).
window_test_missing() {
  local window=()
  { command -v Xvfb >/dev/null && command -v xauth >/dev/null; } || window+=("xvfb")
  command -v WebKitWebDriver >/dev/null || window+=("webkit2gtk-driver")
  command -v tauri-driver >/dev/null || window+=("tauri-driver (cargo install tauri-driver --locked)")
  pkg-config --exists webkit2gtk-4.1 2>/dev/null ||
    window+=("libwebkit2gtk-4.1-dev libsoup-3.0-dev libjavascriptcoregtk-4.1-dev librsvg2-dev")
  echo "${window[*]}"
}
