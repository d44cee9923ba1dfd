#!/usr/bin/env bash
# Installs the servers the scale-out tests start on loopback ports of their
# own: PgBouncer (Debian package pgbouncer; the tests run it as the
# postgres user and never start the package's own service). redis-server,
# which the Redis Cluster tests use, comes with `make services`.
# Needs root and apt-get only when something is missing; otherwise it says
# what to install and exits non-zero.
set -euo pipefail

say() { printf 'scale-deps: %s\n' "$*" >&2; }

missing=()
command -v pgbouncer >/dev/null 2>&1 || missing+=(pgbouncer)
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	say "missing: ${missing[*]}; install the Debian package(s) (apt-get install ${missing[*]}) as root, then run make test again"
	exit 1
fi
say "installing ${missing[*]} (Debian packages)"
# The tests start their own PgBouncer; keep the package's service from
# starting on port 6432 where policy-rc.d does not already forbid it.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	added_policy=1
fi
trap '[[ $added_policy -eq 1 ]] && rm -f "$policy"' EXIT
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 || {
		say "could not install ${missing[*]}; install it by hand and run make test again"
		exit 1
	}
fi
