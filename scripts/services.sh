#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer before `make run` or `make test`.
#
# Uses DATABASE_URL and REDIS_URL (or the REDIS_HOST/REDIS_PORT family) when
# set, else the localhost defaults. When a local service does not answer it is
# started, and installed from Debian packages first when missing, as long as
# this runs as root with apt-get available. Otherwise it prints exactly what
# to install and exits non-zero. It is idempotent and takes a few milliseconds
# when both services already answer.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

# host_port URL DEFAULT_PORT prints "host port" parsed from a URL of the form
# scheme://[user[:pass]@]host[:port][/...].
host_port() {
	local url=$1 default_port=$2 rest host port
	rest=${url#*://}
	rest=${rest%%/*}
	rest=${rest%%\?*}
	rest=${rest##*@}
	if [[ $rest == \[*\]* ]]; then # [::1]:5432
		host=${rest%%]*}
		host=${host#[}
		port=${rest##*]}
		port=${port#:}
	else
		host=${rest%%:*}
		port=${rest#"$host"}
		port=${port#:}
	fi
	printf '%s %s\n' "${host:-127.0.0.1}" "${port:-$default_port}"
}

# answers HOST PORT succeeds when something accepts TCP connections there.
answers() {
	timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

is_local() {
	case $1 in 127.* | localhost | ::1) return 0 ;; *) return 1 ;; esac
}

can_install() {
	[[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1
}

wait_for() { # HOST PORT NAME
	local i
	for i in $(seq 1 100); do
		if answers "$1" "$2"; then return 0; fi
		sleep 0.1
	done
	log "$3 did not start answering on $1:$2 within 10s"
	return 1
}

apt_updated=0
apt_install() {
	if [[ $apt_updated -eq 0 ]]; then
		log "apt-get update"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

ensure_postgres() {
	local url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/msgrunner?sslmode=disable}
	local host port
	read -r host port < <(host_port "$url" 5432)
	if answers "$host" "$port"; then return 0; fi
	if ! is_local "$host"; then
		log "PostgreSQL does not answer at $host:$port (from DATABASE_URL); start it or fix DATABASE_URL"
		return 1
	fi
	if ! can_install; then
		cat >&2 <<EOF
services: PostgreSQL does not answer at $host:$port and this script cannot install it
          (it needs root and apt-get). Do one of:
            sudo apt-get install postgresql && sudo pg_ctlcluster <version> main start
            docker compose up -d postgres
          or point DATABASE_URL at a PostgreSQL 15+ server you can use.
EOF
		return 1
	fi
	local fresh=0
	if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
		apt_install postgresql
		fresh=1
	fi
	local version
	version=$(ls /etc/postgresql | sort -V | tail -1)
	if [[ $fresh -eq 1 ]]; then
		# A cluster this script installed is a development cluster: let local
		# TCP clients in as any user without a password, as DATABASE_URL's
		# default expects. Existing clusters are never reconfigured.
		local hba=/etc/postgresql/$version/main/pg_hba.conf
		sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
		log "configured trust auth for loopback TCP in $hba (development cluster)"
	fi
	log "starting PostgreSQL $version"
	pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
	# If the package's own scripts had already started it, load the new
	# pg_hba.conf.
	pg_ctlcluster --skip-systemctl-redirect "$version" main reload >&2 || true
	wait_for "$host" "$port" PostgreSQL
}

ensure_redis() {
	local host port
	if [[ -n ${REDIS_URL:-} ]]; then
		read -r host port < <(host_port "$REDIS_URL" 6379)
	else
		host=${REDIS_HOST:-127.0.0.1}
		port=${REDIS_PORT:-6379}
	fi
	if answers "$host" "$port"; then return 0; fi
	if ! is_local "$host"; then
		log "Redis does not answer at $host:$port; start it or fix REDIS_URL"
		return 1
	fi
	if ! command -v redis-server >/dev/null 2>&1; then
		if ! can_install; then
			cat >&2 <<EOF
services: Redis does not answer at $host:$port and this script cannot install it
          (it needs root and apt-get). Do one of:
            sudo apt-get install redis-server
            docker compose up -d redis
          or point REDIS_URL at a Redis 7 server you can use.
EOF
			return 1
		fi
		apt_install redis-server
	fi
	log "starting Redis on $host:$port without persistence (development)"
	mkdir -p /tmp/msgrunner-redis
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$port" \
		--save "" --appendonly no --dir /tmp/msgrunner-redis \
		--logfile /tmp/msgrunner-redis/redis.log >&2
	wait_for "$host" "$port" Redis
}

status=0
ensure_postgres || status=1
ensure_redis || status=1
exit $status
