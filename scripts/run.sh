#!/usr/bin/env bash
# Runs the whole system for development: migrates the database (creating it
# if missing), then runs the runner and a gateway until Ctrl-C, and prints
# two demo links. Called by `make run` after the services step and build.
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
export LOG_FORMAT=${LOG_FORMAT:-text}

./bin/admin migrate up --create-database

alice=00000000-0000-4000-8000-00000000a11c
bob=00000000-0000-4000-8000-000000000b0b
alice_token=$(./bin/admin token --user "$alice" --ttl 24h)
bob_token=$(./bin/admin token --user "$bob" --ttl 24h)

addr() { case $1 in :*) echo "127.0.0.1$1" ;; *) echo "$1" ;; esac; }
gw=$(addr "${GATEWAY_ADDR:-:8081}")
rn=$(addr "${RUNNER_ADDR:-:9090}")

cat <<EOT

  demo chat, as Alice:  http://$gw/?token=$alice_token&peer=$bob
  demo chat, as Bob:    http://$gw/?token=$bob_token&peer=$alice
  message API:          http://$gw/v1/messages   (bearer tokens: ./bin/admin token --user <uuid>)
  gateway health:       http://$gw/healthz
  runner health:        http://$rn/healthz
  not built yet:        admin HTTP API and River UI (admin serve)
  Ctrl-C stops both; running jobs get RUNNER_SHUTDOWN_TIMEOUT to finish.

EOT

pids=()
stop() {
	trap - INT TERM
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

./bin/runner &
pids+=($!)
./bin/gateway &
pids+=($!)

# When either process exits, stop the other and report its status.
set +e
wait -n "${pids[@]}"
status=$?
stop
exit $status
