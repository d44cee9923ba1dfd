# Quick start: `make run` runs the system, `make test` runs the tests.
# Both first make sure PostgreSQL and Redis answer (scripts/services.sh).

SHELL := /bin/bash
GO ?= go
SQLC := $(GO) tool -modfile=tools/go.mod sqlc
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/msgrunner?sslmode=disable
export DATABASE_URL

.PHONY: run test check-alerts services scale-deps browser-deps node-deps generate generate-config-doc generate-js check-generated vet fmt-check build bench bench-bull fuzz test-chaos test-scale bench-retention clean

## services: start (and if needed install) PostgreSQL and Redis
services:
	@bash scripts/services.sh

## build: compile every binary into bin/
build:
	@mkdir -p bin
	$(GO) build -o bin/ ./cmd/...

## run: create and migrate the database, then run the runner, a gateway and the admin server
run: services build
	@bash scripts/run.sh

## test: vet, format and generated-code checks, then every test against real services
test: services scale-deps browser-deps node-deps check-generated check-alerts vet fmt-check
	$(GO) test -race -count=1 -timeout 15m ./...

## check-alerts: the Prometheus alerting rules (deploy/prometheus) checked and unit-tested with promtool
check-alerts: scale-deps
	promtool check rules deploy/prometheus/alerts.yml
	cd deploy/prometheus && promtool test rules alerts_test.yml

## scale-deps: PgBouncer and promtool (Debian packages pgbouncer and prometheus): the scale-out tests start
## PgBouncer on ports of their own; check-alerts runs promtool
scale-deps:
	@bash scripts/scale-deps.sh

## browser-deps: chromium and playwright-core for the demo page's browser test (best effort)
browser-deps:
	@bash scripts/browser-deps.sh

## node-deps: node and npm (Debian packages) and clients/js's dev dependencies, for the Node tests (best effort)
node-deps:
	@bash scripts/node-deps.sh

## generate: regenerate sqlc code from migrations/ and internal/db/queries/, docs/configuration.md, and
## the TypeScript client's types (from api/gateway.yaml) and build (clients/js/dist)
generate: generate-config-doc generate-js
	$(SQLC) generate

## generate-js: clients/js/src/schema.ts from api/gateway.yaml (openapi-typescript) and clients/js/dist
## (tsc), which the gateway embeds; needs node-deps
generate-js: node-deps
	@cd clients/js && npm run --silent build

## generate-config-doc: write docs/configuration.md from the settings list in internal/config/settings.go
generate-config-doc:
	$(GO) run ./internal/config/cmd/configdoc -o docs/configuration.md

## check-generated: fail when generated code differs from what sqlc would write, or
## docs/configuration.md from what generate-config-doc would write
check-generated:
	@$(SQLC) diff || { echo "generated code is stale: run 'make generate' and commit the result" >&2; exit 1; }
	@$(GO) run ./internal/config/cmd/configdoc -check -o docs/configuration.md
	@bash scripts/check-js.sh

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:" >&2; echo "$$out" >&2; exit 1; fi

## test-chaos: the fault tests (tests/chaos): real runner, gateway and admin processes on a throwaway
## PostgreSQL and Redis of their own, killed and restarted under load; prints each test's FIGURES line
test-chaos: services
	$(GO) vet -tags chaos ./tests/chaos/
	@set -o pipefail; $(GO) test -tags chaos -count=1 -v -timeout 20m -skip '$(SCALE_TESTS)' ./tests/chaos/ 2>&1 | grep -v '^=== RUN'

## test-scale: the fault tests past one machine (tests/chaos): a Redis Cluster with a replica per
## master losing a master, a Postgres primary with a synchronous standby failing over, and PgBouncer
## in front of the gateways restarting, under load; prints each test's FIGURES line
SCALE_TESTS := TestRedisClusterMasterKilledUnderLoad|TestPostgresFailoverUnderLoad|TestPgBouncerRestartUnderLoad
test-scale: services scale-deps
	$(GO) vet -tags chaos ./tests/chaos/
	@set -o pipefail; $(GO) test -tags chaos -count=1 -v -timeout 20m -run '$(SCALE_TESTS)' ./tests/chaos/ 2>&1 | grep -v '^=== RUN'

## fuzz: every fuzz target (func Fuzz* in *_test.go) for FUZZTIME each, one at a time (scripts/fuzz.sh); not part
## of make test, whose go test runs the seed corpora; a failure leaves its input under testdata/fuzz/ as a new seed
FUZZTIME ?= 10s
fuzz: services
	@GO="$(GO)" FUZZTIME="$(FUZZTIME)" bash scripts/fuzz.sh

## bench: every benchmark against local services (not part of make test); writes bench/results/latest.{md,json}
bench: services scale-deps
	@mkdir -p bench/results
	@set -o pipefail; { \
	  $(GO) test -run '^$$' -bench Drain -benchtime 3x -count 1 ./internal/runner/ && \
	  $(GO) test -run '^$$' -bench 'WritePath$$' -benchtime 1x -count 3 ./outbox/ && \
	  $(GO) test -run '^$$' -bench WritePathThroughPgBouncer -benchtime 1x -count 3 ./outbox/ && \
	  $(GO) test -run '^$$' -bench LiveFanout -benchtime 1x -count 3 ./internal/fanout/ && \
	  $(GO) test -run '^$$' -bench EndToEnd -benchtime 1x -count 3 ./internal/gateway/ && \
	  $(GO) test -run '^$$' -bench Broadcast100k -benchtime 1x -count 1 -timeout 15m ./internal/gateway/ && \
	  $(GO) test -run '^$$' -bench GroupFanout -benchtime 1x -count 1 -timeout 20m ./internal/gateway/ && \
	  $(GO) test -run '^$$' -bench Delivery -benchtime 1x -count 3 -timeout 15m ./workers/ && \
	  $(GO) test -run '^$$' -bench GatewayCapacity -benchtime 1x -count 3 -timeout 15m ./tests/perf/ && \
	  $(GO) test -run '^$$' -bench Resources -benchtime 1x -count 3 -timeout 15m ./tests/perf/ ; \
	} 2>&1 | grep -v '^redis:' | tee bench/results/raw.txt
	$(GO) run ./cmd/benchreport -out bench/results/latest -bullmq bench/results/bullmq.json < bench/results/raw.txt
	@echo "wrote bench/results/latest.md and latest.json"

## bench-retention: the cleanup job's message retention on a table of RETENTION_ROWS messages (default
## 5,000,000; several minutes), half of them older than the 90-day cutoff
RETENTION_ROWS ?= 5000000
bench-retention: services
	@set -o pipefail; RETENTION_ROWS=$(RETENTION_ROWS) $(GO) test -run '^$$' -bench Retention -benchtime 1x -count 1 -timeout 60m ./workers/ 2>&1 | grep -v '^redis:'

## bench-bull: the earlier stack for comparison: BullMQ (pinned in bench/bullmq/package.json) on the local
## Redis, enqueue rate, drain rate and add→complete latency, 3 runs, into bench/results/bullmq.json
## (which make bench's report then includes); skipped when node or npm is missing
bench-bull: services
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  echo "bench-bull: node and npm are not installed; skipping the BullMQ comparison"; exit 0; fi; \
	set -e; cd bench/bullmq; \
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi; \
	node bench.js ../results/bullmq.json

clean:
	rm -rf bin
