#!/usr/bin/env bash
# Runs the whole system for development: migrates the database (creating it
# if missing), then runs the runner, a gateway and the admin server until
# Ctrl-C, and prints where everything is. Called by `make run` after the
# services step and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p .dev
if [[ -z ${AUTH_SECRET:-} ]]; then
	# A development signing secret, made once and kept out of git.
	if [[ ! -s .dev/auth-secret ]]; then
		head -c 48 /dev/urandom | base64 | tr -d '\n' > .dev/auth-secret
		chmod 600 .dev/auth-secret
	fi
	AUTH_SECRET=$(cat .dev/auth-secret)
fi
export AUTH_SECRET
if [[ -z ${ENCRYPTION_KEYS:-} ]]; then
	# A development key-encryption key, made once and kept out of git.
	if [[ ! -s .dev/encryption-key ]]; then
		head -c 32 /dev/urandom | base64 | tr -d '\n' > .dev/encryption-key
		chmod 600 .dev/encryption-key
	fi
	export ENCRYPTION_KEYS="dev1:$(cat .dev/encryption-key)" ENCRYPTION_ACTIVE_KEY=dev1
fi
export LOG_FORMAT=${LOG_FORMAT:-text}
export ATTACHMENTS_DIR=${ATTACHMENTS_DIR:-.dev/attachments}
# Compliance exports (encrypt-decrypt decrypt jobs) land here.
export EXPORT_DIR=${EXPORT_DIR:-.dev/exports}

addr() { case $1 in :*) echo "127.0.0.1$1" ;; *) echo "$1" ;; esac; }
gw=$(addr "${GATEWAY_ADDR:-:8081}")
rn=$(addr "${RUNNER_ADDR:-:9090}")
ad=$(addr "${ADMIN_ADDR:-:8080}")
# A port already taken is said plainly, before anything starts.
port_busy() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for pair in "GATEWAY_ADDR $gw" "RUNNER_ADDR $rn" "ADMIN_ADDR $ad"; do
	set -- $pair
	if port_busy "$2"; then
		echo "make run: port ${2##*:} ($1) is already in use: another 'make run' may be running;" \
			"stop it, or set $1 to another address" >&2
		exit 1
	fi
done

./bin/admin migrate up --create-database

alice=00000000-0000-4000-8000-00000000a11c
bob=00000000-0000-4000-8000-000000000b0b
alice_token=$(./bin/admin token --user "$alice" --ttl 24h)
bob_token=$(./bin/admin token --user "$bob" --ttl 24h)

# The token command the banner shows must work when pasted into another
# shell, which does not have this script's AUTH_SECRET.
if [[ -s .dev/auth-secret && $AUTH_SECRET == "$(cat .dev/auth-secret)" ]]; then
	token_cmd='AUTH_SECRET=$(cat .dev/auth-secret) ./bin/admin token --user <uuid>'
else
	token_cmd='./bin/admin token --user <uuid>, with your AUTH_SECRET set'
fi

if [[ -z ${ADMIN_TOKEN:-}${ADMIN_VIEWER_TOKEN:-} ]]; then
	# Development: the admin server is open to anyone who can reach it, and
	# says so loudly in its log.
	export ADMIN_INSECURE_DEV=1
fi

banner() {
	cat <<EOT

  demo chat, as Alice:  http://$gw/?token=$alice_token&peer=$bob&name=Alice
  demo chat, as Bob:    http://$gw/?token=$bob_token&peer=$alice&name=Bob
                        (either page starts a group chat: "New group with your peer")
  message API:          http://$gw/v1/messages
  bearer tokens:        $token_cmd
  admin home:           http://$ad/
  River UI:             http://$ad/river/
  reports:              http://$ad/reports
  admin API:            http://$ad/queue/metrics   (also /queue/health, /queue/<queue>/failed, /jobs/<id>)
  gateway health:       http://$gw/healthz
  runner health:        http://$rn/healthz
  Ctrl-C stops all three; running jobs get RUNNER_SHUTDOWN_TIMEOUT to finish.

EOT
}

pids=()
stop() {
	trap - INT TERM
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

if [[ ${FAKE_PROVIDERS:-} == 1 ]]; then
	# Local stand-ins for SMTP, push and SMS (loopback only); the runner
	# sends to them and they print what arrives.
	rm -f .dev/fakeproviders.env
	./bin/fakeproviders -env-file .dev/fakeproviders.env &
	pids+=($!)
	for _ in $(seq 50); do [[ -s .dev/fakeproviders.env ]] && break; sleep 0.1; done
	# shellcheck disable=SC1091
	source .dev/fakeproviders.env
fi
# Each process's lines start with its name.
./bin/runner > >(sed -u 's/^/runner  | /') 2>&1 &
pids+=($!)
./bin/gateway > >(sed -u 's/^/gateway | /') 2>&1 &
pids+=($!)
./bin/admin serve > >(sed -u 's/^/admin   | /') 2>&1 &
pids+=($!)

# The banner once all three answer (or say which did not within 60 s).
ready() { # URL http://host:port/path answers 200 (bash's /dev/tcp: no curl needed)
	local rest=${1#http://} line
	local hostport=${rest%%/*} path=/${rest#*/}
	(
		exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3
		IFS= read -r -t 2 line <&3 || exit 1
		[[ $line == *" 200 "* ]]
	) 2>/dev/null
}
shown=0
for _ in $(seq 600); do
	if ready "http://$gw/readyz" && ready "http://$rn/readyz" && ready "http://$ad/healthz"; then
		banner
		shown=1
		break
	fi
	if ! kill -0 "${pids[@]}" 2>/dev/null; then
		break # one exited: the wait below reports it
	fi
	sleep 0.1
done
if ((!shown)); then
	echo "make run: not everything answered its health check within 60 s (gateway http://$gw/readyz," \
		"runner http://$rn/readyz, admin http://$ad/healthz); see the lines above" >&2
fi

# When any process exits, stop the others and report its status.
set +e
wait -n "${pids[@]}"
status=$?
stop
exit $status
