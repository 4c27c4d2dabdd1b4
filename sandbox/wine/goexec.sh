#!/usr/bin/env bash
# go test -exec wrapper: runs one Windows test binary under Wine in a private
# copy of the template WINEPREFIX (see setup.sh), so packages tested in
# parallel never share a service manager, and shuts that prefix's wineserver
# down afterwards so nothing is left running.
#
# Binaries the Windows tests need (gsd-agent.exe, fixtures) are taken from
# $GSD_WINE_BIN (a Linux directory) and exposed to the test as
# GSD_WINE_BIN_WIN, a Windows path.
set -uo pipefail

wine_home="${GSD_WINE_HOME:-$HOME/.cache/gsd/wine}"
template="$wine_home/template"

if ! command -v wine >/dev/null || [ ! -f "$template/.gsd-ready" ]; then
	msg="goexec: Wine or its template prefix is missing (run 'make wine-prefix')"
	if [ "${GSD_REQUIRE_WINE:-}" = 1 ]; then
		echo "$msg; GSD_REQUIRE_WINE=1, failing" >&2
		exit 1
	fi
	echo "$msg; not running $1" >&2
	exit 1
fi

prefix="$(mktemp -d "$wine_home/run.XXXXXX")"
cleanup() {
	WINEPREFIX="$prefix" wineserver -k >/dev/null 2>&1 || true
	WINEPREFIX="$prefix" wineserver -w >/dev/null 2>&1 || true
	rm -rf "$prefix"
}
trap cleanup EXIT INT TERM QUIT HUP
cp -a "$template/." "$prefix/"

export WINEPREFIX="$prefix" WINEDEBUG="${WINEDEBUG:--all}"
if [ -n "${GSD_WINE_BIN:-}" ]; then
	export GSD_WINE_BIN_WIN="Z:${GSD_WINE_BIN//\//\\}"
fi
wine "$@"
status=$?
exit "$status"
