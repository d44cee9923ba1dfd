#!/usr/bin/env bash
# Fails when clients/js/src/schema.ts or clients/js/dist differ from what
# `make generate-js` would write (types from api/gateway.yaml, then tsc).
# Without node or clients/js's dev dependencies it says so and passes: the
# committed build is then what the gateway embeds.
set -uo pipefail
cd "$(dirname "$0")/../clients/js"
if ! command -v node >/dev/null 2>&1 || [[ ! -x node_modules/.bin/tsc || ! -x node_modules/.bin/openapi-typescript ]]; then
	echo "check-js: node or clients/js's dev dependencies are missing (make node-deps); not checking clients/js/dist" >&2
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/openapi-typescript ../../api/gateway.yaml --output "$tmp/schema.ts" --silent >/dev/null 2>&1 || {
	echo "check-js: openapi-typescript failed on api/gateway.yaml" >&2
	exit 1
}
if ! cmp -s "$tmp/schema.ts" src/schema.ts; then
	echo "clients/js/src/schema.ts is stale: run 'make generate-js' and commit the result" >&2
	exit 1
fi
node_modules/.bin/tsc -p tsconfig.json --outDir "$tmp/dist" || { echo "check-js: tsc failed" >&2; exit 1; }
if ! diff -r -q "$tmp/dist" dist >/dev/null; then
	echo "clients/js/dist is stale: run 'make generate-js' and commit the result" >&2
	exit 1
fi
