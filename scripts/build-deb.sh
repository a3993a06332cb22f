#!/usr/bin/env bash
# Builds target/deb/flowkeep_<version>_<arch>.deb from this checkout, offline
# apart from crates and npm packages: a release `flowkeep` with the desktop
# window (`--features native`), a menu entry and an icon, packed by dpkg-deb.
# Install with: sudo apt install ./target/deb/flowkeep_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dpkg-deb >/dev/null || { echo "dpkg-deb is needed (a Debian or Ubuntu system)"; exit 1; }

cargo build --release --locked --features native --bin flowkeep
target_dir="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
version="$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json, sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "flowkeep-desktop"))')"
arch="$(dpkg --print-architecture)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
install -Dm755 "$target_dir/release/flowkeep" "$stage/usr/bin/flowkeep"
# The release profile keeps line tables for backtraces; a package does not need them.
if command -v strip >/dev/null; then strip --strip-debug "$stage/usr/bin/flowkeep"; fi
install -Dm644 desktop/icons/icon.png "$stage/usr/share/icons/hicolor/256x256/apps/flowkeep.png"
install -Dm644 /dev/stdin "$stage/usr/share/applications/flowkeep.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Flowkeep
Comment=Local-first workflow and configuration manager
Exec=flowkeep app
Icon=flowkeep
Terminal=false
Categories=Development;Utility;
DESKTOP
mkdir -p "$stage/DEBIAN"
cat > "$stage/DEBIAN/control" <<CONTROL
Package: flowkeep
Version: $version
Architecture: $arch
Maintainer: Flowkeep developers <flowkeep@example.invalid>
Depends: libwebkit2gtk-4.1-0, libgtk-3-0, libsoup-3.0-0, libjavascriptcoregtk-4.1-0
Section: utils
Priority: optional
Description: Local-first workflow and configuration manager
 Keep workflows with typed, validated configuration, run them, see every
 execution and every change; sync between your machines. Desktop window,
 browser UI (flowkeep ui) and CLI.
CONTROL
mkdir -p "$target_dir/deb"
out="$target_dir/deb/flowkeep_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$out" >/dev/null
echo "$out"
