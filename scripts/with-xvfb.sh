#!/usr/bin/env bash
# Runs a command under a private Xvfb: `scripts/with-xvfb.sh CMD ARGS...`.
#
# Why not `xvfb-run -a`: it looks for a free display number and only then
# starts Xvfb on it, so two runs started together (a CI run beside a developer's
# run on the same machine) can pick the same number. One CI run that shared
# the machine with another lost its window to "Failed to initialize GTK", most
# likely that way. Here Xvfb claims a free display itself
# (-displayfd, which takes the display's lock atomically) and reports the
# number it got. Access needs a fresh cookie, as with xvfb-run.
set -euo pipefail

dir="$(mktemp -d)"
xvfb=""
cleanup() {
  if [ -n "$xvfb" ]; then
    kill "$xvfb" 2>/dev/null || true
    wait "$xvfb" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT

cookie="$(mcookie)"
# The server accepts every cookie in its -auth file whatever display the entry
# names; the client's entry is added once the display number is known.
touch "$dir/server" "$dir/client"
xauth -q -f "$dir/server" add :0 . "$cookie"
mkfifo "$dir/display"
Xvfb -displayfd 3 -screen 0 1280x1024x24 -nolisten tcp -auth "$dir/server" \
  3>"$dir/display" 2>"$dir/xvfb.log" &
xvfb=$!
if ! read -r -t 30 number <"$dir/display"; then
  echo "Xvfb did not start:" >&2
  cat "$dir/xvfb.log" >&2
  exit 1
fi

export DISPLAY=":$number"
export XAUTHORITY="$dir/client"
xauth -q -f "$XAUTHORITY" add "$DISPLAY" . "$cookie"
set +e
"$@"
status=$?
set -e
exit "$status"
