#!/usr/bin/env bash
# Installs the Debian packages of tools the tests start or run on their
# own: PgBouncer (the scale-out tests run it on loopback ports of their
# own, as the postgres user) and promtool, of the prometheus package (the
# alerting rules are checked and unit-tested with it). The packages'
# own services are kept from starting (the prometheus service would take
# port 9090, the runner's default). redis-server, which the Redis Cluster
# tests use, comes with `make services`.
# Needs root and apt-get only when something is missing; otherwise it says
# what to install and exits non-zero.
set -euo pipefail

say() { printf 'scale-deps: %s\n' "$*" >&2; }

# command=package pairs.
wanted=(pgbouncer=pgbouncer promtool=prometheus)
missing=()
for pair in "${wanted[@]}"; do
	command -v "${pair%%=*}" >/dev/null 2>&1 || missing+=("${pair#*=}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	say "missing: ${missing[*]}; install the Debian package(s) (apt-get install ${missing[*]}) as root, then run make test again"
	exit 1
fi
say "installing ${missing[*]} (Debian packages)"
# Keep the packages' services from starting where policy-rc.d does not
# already forbid it.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod +x "$policy"
	added_policy=1
fi
trap '[[ $added_policy -eq 1 ]] && rm -f "$policy"' EXIT
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
		say "could not install ${missing[*]}; install it by hand and run make test again"
		exit 1
	}
fi
