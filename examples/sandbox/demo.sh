#!/usr/bin/env bash
# The README's first command (make demo): start two sandbox Windows hosts,
# plan and apply the hello service to them, show it answering on each
# host, plan again (no changes), then remove the sandbox. KEEP=1 leaves the
# hosts running in .demo/ for exploring (gsd sandbox down there ends them).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
gsd="$root/bin/gsd"
work="$root/.demo"
hosts="${HOSTS:-2}"

if [ -d "$work/.gsd-sandbox" ]; then (cd "$work" && "$gsd" sandbox down >/dev/null 2>&1 || true); fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
cleanup() { if [ "${KEEP:-}" != 1 ]; then "$gsd" sandbox down; fi; }
trap cleanup EXIT

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "gsd sandbox up -n $hosts"
"$gsd" sandbox up -n "$hosts"

step "gsd validate"
"$gsd" validate . "$root/examples/sandbox/hello.hcl"

step "gsd plan"
"$gsd" plan . "$root/examples/sandbox/hello.hcl"

step "gsd apply -auto-approve"
"$gsd" apply -auto-approve . "$root/examples/sandbox/hello.hcl"

step "the service answering on each host"
for addr in $(sed -n 's/^ *address *= *"\(.*\)"/\1/p' sandbox.hcl); do
	printf '%s: ' "$addr"
	ok=""
	for _ in $(seq 1 20); do
		if out="$(curl -fsS -m 2 "http://$addr:8080/" 2>/dev/null)"; then ok=1; echo "$out"; break; fi
		sleep 0.5
	done
	[ -n "$ok" ] || { echo "no answer"; exit 1; }
done

step "gsd hosts check: how gsd got in (a stock host: HTTP, NTLM, every message encrypted)"
"$gsd" hosts check . "$root/examples/sandbox/hello.hcl"

step "gsd plan again: nothing to do"
"$gsd" plan -detailed-exitcode . "$root/examples/sandbox/hello.hcl"
