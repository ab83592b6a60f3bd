# Shortcuts for Truthboard's scripts and Go tools; `make help` lists them. The scripts are the
# real entry points: `make run` is scripts/up.sh and `make test` is scripts/test.sh.

# How long `make fuzz` fuzzes each target, as a Go duration: make fuzz FUZZTIME=30s
FUZZTIME ?= 5m
# The fuzz targets, as package:Target: the event decoder, the metrics query parameters, the
# live subscription messages and the spool's record decoder.
FUZZ_TARGETS = ./internal/event:FuzzDecode ./internal/rollup:FuzzParseQuery ./internal/live:FuzzParseClientMessage ./internal/spool:FuzzDecodeEvents
# Flags of `make leakcheck` (go run ./cmd/truthboard-tools browse -h): LEAKCHECK="-first 30s -total 3m".
LEAKCHECK ?=
# How long `make faults` keeps ClickHouse stopped, and each load phase lasts (the default suite
# runs them with 5s and 2s).
OUTAGE ?= 30s
FAULTLOAD ?= 20s
# Flags of `make soak` (go run ./cmd/truthboard-tools soak -h): SOAK="-duration 5m -rate 5000".
SOAK ?=

# Runs a command with TRUTHBOARD_CLICKHOUSE_ADDR set, starting a local ClickHouse if needed.
WITH_CLICKHOUSE = env_=$$(scripts/clickhouse.sh env) && eval "$$env_" &&

.PHONY: help run test build fuzz bench bench-ingest bench-cluster bench-metrics bench-live bench-alerts screenshots leakcheck clickhouse-stop

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

run: ## set up everything and run Truthboard with demo traffic (scripts/up.sh)
	scripts/up.sh

test: ## install what the tests need and run every test, as CI does (scripts/test.sh)
	scripts/test.sh

build: ## build bin/truthboard
	go build -o bin/truthboard ./cmd/truthboard

fuzz: ## fuzz the event decoder, metrics query parameters and live messages, FUZZTIME each (default 5m)
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		go test -run '^$$' -fuzz="^$${t#*:}\$$" -fuzztime=$(FUZZTIME) $${t%%:*}/; \
	done

bench: bench-ingest bench-metrics bench-live bench-alerts ## every benchmark, each writing its section of docs/benchmarks.md

bench-ingest: ## HTTP ingest against the bare driver, ack latency at 20k events/s, overload (~5 min)
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools ingest-bench -suite ingest -out docs/benchmarks.md

bench-cluster: ## ingest through one and two nodes on a local ClickHouse cluster with NATS claims vs. the bare driver; freshness on the other node (~5 min)
	go run ./cmd/truthboard-tools ingest-bench -suite cluster -out docs/benchmarks.md

bench-metrics: ## the executive view's queries per tick at 1M, 10M and 50M events of history (~10 min)
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools metrics-bench -diagnose 0 -out docs/benchmarks.md

bench-live: ## freshness, and fan-out to 1,000 and 5,000 screens on one view and over 50 (~5 min)
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools live-bench -out docs/benchmarks.md

bench-alerts: ## the default alert rules on simulated demo traffic: false alarms per hour, time to fire per incident, cost per tick (~10 min)
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools alert-bench -out docs/benchmarks.md

screenshots: build ## PNGs of every view from a live run with demo traffic, into docs/screenshots/
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools browse -bin bin/truthboard -out docs/screenshots screenshots

leakcheck: build ## the TV wall's JS heap after 10 min of live updates, against after 1 min (fails above +20%)
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools browse -bin bin/truthboard $(LEAKCHECK) leakcheck

.PHONY: faults
faults: ## the fault tests at full length: kill -9, ClickHouse stopped 30 s, full spool, half-written segment, SIGTERM
	$(WITH_CLICKHOUSE) go test -count=1 -v -run '^TestFault' ./cmd/truthboard/ -args -outage $(OUTAGE) -load $(FAULTLOAD)

.PHONY: soak
soak: build ## 30 min of 20k events/s and 500 live screens: server RSS, goroutines, open files must stay flat
	$(WITH_CLICKHOUSE) go run ./cmd/truthboard-tools soak -bin bin/truthboard -out docs/benchmarks.md $(SOAK)

clickhouse-stop: ## stop the project-local ClickHouse server (var/clickhouse/)
	scripts/clickhouse.sh stop
