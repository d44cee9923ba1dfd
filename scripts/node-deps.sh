#!/usr/bin/env bash
# Installs what the Node tests need: Debian's nodejs and npm (as root, with
# apt-get) when node is missing, and clients/js's dev dependencies (npm ci).
# Best effort: when something cannot be installed it says so and exits 0,
# and the Node tests skip with the reason.
set -uo pipefail
cd "$(dirname "$0")/../clients/js"

say() { printf 'node-deps: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		say "installing nodejs and npm (Debian packages)"
		{ DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >/dev/null 2>&1 ||
			say "could not install nodejs and npm; the Node tests will skip"
	else
		say "no node/npm and cannot install them (needs root and apt-get); the Node tests will skip"
	fi
fi

if command -v npm >/dev/null 2>&1; then
	if [[ ! -d node_modules/pg || ! -x node_modules/.bin/tsc ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
		say "installing clients/js dev dependencies (npm ci)"
		npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || say "npm ci failed in clients/js; the Node tests will skip"
	fi
fi
exit 0
