#!/usr/bin/env bash
# Installs what the demo page's browser test needs: Debian's chromium (as
# root, with apt-get) and playwright-core from npm (no browser download).
# Best effort: when something cannot be installed it says so and exits 0,
# and the browser test skips with the reason.
set -uo pipefail
cd "$(dirname "$0")/../tests/browser"

say() { printf 'browser-deps: %s\n' "$*" >&2; }

if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		say "installing chromium (Debian package)"
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1 ||
			say "could not install chromium; the browser test will skip"
	else
		say "no chromium and cannot install it (needs root and apt-get); the browser test will skip"
	fi
fi

if [[ ! -d node_modules/playwright-core ]]; then
	if command -v npm >/dev/null 2>&1; then
		say "installing playwright-core (npm ci)"
		npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || say "npm ci failed; the browser test will skip"
	else
		say "no npm; the browser test will skip"
	fi
fi
exit 0
