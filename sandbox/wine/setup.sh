#!/usr/bin/env bash
# Prepares a template WINEPREFIX for gsd's Windows tests and the sandbox:
# wineboot done, and the ProcessPrng shim (see processprng.c) installed so
# that Go >= 1.22 binaries start under Wine 8. Tests copy the template
# (cp -a) instead of booting a prefix of their own.
#
# Idempotent: when $GSD_WINE_HOME/template/.gsd-ready exists and the shim
# source has not changed, it returns at once. .gsd-ready is touched last, so
# a half-made template is never mistaken for a ready one.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wine_home="${GSD_WINE_HOME:-$HOME/.cache/gsd/wine}"
template="$wine_home/template"
ready="$template/.gsd-ready"
export WINEDEBUG=-all
export WINEARCH=win64

shim_sum="$(cat "$here/processprng.c" "$here/bcryptprimitives.def" | sha256sum | cut -d' ' -f1)"
if [ -f "$ready" ] && [ "$(cat "$ready")" = "$shim_sum" ]; then
	exit 0
fi

for tool in wine wineserver x86_64-w64-mingw32-gcc; do
	if ! command -v "$tool" >/dev/null; then
		echo "wine-prefix: $tool not found; run 'make deps' (apt: wine wine64 gcc-mingw-w64-x86-64-win32)" >&2
		exit 1
	fi
done

mkdir -p "$wine_home"
build="$(mktemp -d "$wine_home/.build.XXXXXX")"
trap 'rm -rf "$build"' EXIT

x86_64-w64-mingw32-gcc -shared -O2 -s -o "$build/bcryptprimitives.dll" \
	"$here/processprng.c" "$here/bcryptprimitives.def" -ladvapi32

# Boot into a fresh directory and move it into place, so a crash half-way
# leaves no template that looks usable.
if [ ! -f "$template/system.reg" ]; then
	rm -rf "$template"
	staging="$build/prefix"
	WINEPREFIX="$staging" wine wineboot -i >/dev/null 2>&1 || true
	WINEPREFIX="$staging" wineserver -w || true
	if [ ! -d "$staging/drive_c/windows/system32" ]; then
		echo "wine-prefix: wineboot did not create $staging/drive_c/windows/system32" >&2
		exit 1
	fi
	mv "$staging" "$template"
fi

rm -f "$ready"
cp "$build/bcryptprimitives.dll" "$template/drive_c/windows/system32/bcryptprimitives.dll"
printf '%s\n' "$shim_sum" > "$ready"
