# temporal-opa: make run (a secured dev server), make test (everything CI checks).
GO        ?= go
OPA       := $(GO) tool opa
SCHEMA    := rego/input.schema.json
DEFAULT   := rego/bundle
BUNDLES   := $(wildcard bundles/*/)
COMPOSE   := bundles/compose_test.rego
BENCHTIME ?= 1s
# The temporal CLI the end-to-end tests drive (the tool users run against the server), built from source:
# the release binaries cannot be downloaded here.
TEMPORAL_CLI_VERSION := v1.5.1
TEMPORAL_CLI         := $(CURDIR)/.ci/bin/temporal
ARGS      ?=

# One compile for everything: the binary, the test binaries and the image share
# CGO_ENABLED=0 (a static binary; SQLite is pure Go). Only test-race needs cgo.
export CGO_ENABLED := 0
# Release builds: -trimpath (no path of the build machine in the binary: files
# are named by module path and version) for every compile, so that the binary
# and the tests still share one; the binary is linked with -s -w (no symbol
# table, no DWARF: about a third smaller; panics still print function names,
# files and lines, from the runtime's own tables). `go version -m temporal-opa`
# shows both. The user's GOFLAGS are kept.
export GOFLAGS := $(strip $(filter-out -trimpath,$(shell $(GO) env GOFLAGS)) -trimpath)
LDFLAGS   ?= -s -w

.PHONY: all run build test test-go test-race test-rego test-policy-ci lint bench bench-server soak fuzz clean browser-deps cli-deps image deps docs

all: build

## run: start a secured single-process Temporal dev server (see docs/getting-started.md); flags via ARGS="--policy bundles/x"
run: build
	./temporal-opa start-dev $(ARGS)

## build: build the temporal-opa binary into ./temporal-opa (a release build: -trimpath, -ldflags='-s -w')
build:
	$(GO) build -ldflags='$(LDFLAGS)' -o temporal-opa ./server

## test: Go tests, race tests of the policy library, and opa fmt/check/test/build of every policy
test: deps browser-deps cli-deps test-rego test-go test-race test-policy-ci

# The e2e tests build the image from ./temporal-opa (TEMPORAL_OPA_BIN) instead of linking it again. The e2e package
# (a real server, the cluster, the soak's short form, the docs' commands) takes 6-8 minutes: past go test's default
# 10-minute limit on a loaded machine, hence -timeout.
test-go: build
	TEMPORAL_OPA_BIN=$(CURDIR)/temporal-opa TEMPORAL_CLI=$(TEMPORAL_CLI) $(GO) test -count=1 -timeout 30m ./...

# -race rebuilds all it links: only packages that do not link the whole server.
test-race:
	CGO_ENABLED=1 $(GO) test -count=1 -race ./policy/...

# Each bundle alone on the default policy, then all of them together (their roots
# temporal/custom/<name> must not overlap; $(COMPOSE) tests decisions they make together).
test-rego:
	$(OPA) fmt --fail --list $(DEFAULT) $(BUNDLES) $(COMPOSE) || { echo "opa fmt: run 'go tool opa fmt -w $(DEFAULT) $(BUNDLES) $(COMPOSE)'"; exit 1; }
	$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT)
	$(OPA) test --fail-on-empty $(DEFAULT)
	$(OPA) build -b --ignore '*_test.rego' -o /dev/null $(DEFAULT)
	@set -e; for b in $(BUNDLES); do \
		echo "== bundle $$b"; \
		$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT) $$b; \
		$(OPA) test --fail-on-empty $(DEFAULT) $$b; \
		$(OPA) build -b --ignore '*_test.rego' -o /dev/null $$b; \
	done
	@echo "== all bundles together"
	$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT) $(BUNDLES) $(COMPOSE)
	$(OPA) test --fail-on-empty --run '^data\.bundles\.compose_test\.' $(DEFAULT) $(BUNDLES) $(COMPOSE)
	$(OPA) build -b --ignore '*_test.rego' -o /dev/null $(DEFAULT) $(BUNDLES)

## test-policy-ci: the Policy CI recipe of docs/policy-ci.md on each example bundle, run by the built binary
## from a temporary directory that holds only that bundle (no checkout of this repository needed)
POLICY_COVERAGE ?= 90
test-policy-ci: build
	@set -e; for b in $(BUNDLES); do \
		name=$$(basename $$b); tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
		cp -R $$b "$$tmp/$$name"; \
		echo "== policy CI of $$name, alone in $$tmp"; \
		(cd "$$tmp" && \
			$(CURDIR)/temporal-opa policy check "$$name" && \
			$(CURDIR)/temporal-opa policy test --fail-on-empty "$$name" && \
			$(CURDIR)/temporal-opa policy test --threshold $(POLICY_COVERAGE) "$$name" >/dev/null && \
			$(CURDIR)/temporal-opa policy export .temporal-opa >/dev/null); \
		$(OPA) test --fail-on-empty "$$tmp/.temporal-opa" "$$tmp/$$name"; \
		$(OPA) check --strict --schema "$$tmp/.temporal-opa/input.schema.json" "$$tmp/.temporal-opa" "$$tmp/$$name"; \
		$(OPA) build -b --ignore '*_test.rego' -o "$$tmp/bundle.tar.gz" "$$tmp/$$name"; \
		(cd "$$tmp" && $(CURDIR)/temporal-opa policy check bundle.tar.gz); \
		rm -rf "$$tmp"; \
	done

## docs: regenerate the reference pages generated from the code (docs/reference/commands.md from the commands' flag
## sets, authz-file.md from the strict config reader's types, metrics.md from a real metrics handler, input.md from
## rego/input.schema.json); `make test` fails while one is stale. The commands of the docs run in TestDocs (e2e).
docs:
	$(GO) test -count=1 -run '^TestCommandsReference$$' ./server/internal/cli -update
	$(GO) test -count=1 -run '^TestAuthzFileReference$$' ./server/internal/authzconfig -update
	$(GO) test -count=1 -run '^TestMetricsReference$$' ./policy/authzmetrics -update
	$(GO) test -count=1 -run '^TestInputReference$$' ./policy -update

## lint: gofmt, go vet, opa fmt and opa check
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(OPA) fmt --fail --list $(DEFAULT) $(BUNDLES) $(COMPOSE)
	$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT)
	@set -e; for b in $(BUNDLES); do $(OPA) check --strict --schema $(SCHEMA) $(DEFAULT) $$b; done

## bench: our authorizer and claim mapper against Temporal's defaults, same inputs, same run; decision logs at
## 50,000 calls/s for 60s, once (BenchmarkDecisionLogLineRate; TEMPORAL_OPA_DL_DURATION=10s TEMPORAL_OPA_DL_RATE=50000)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./policy/...

## bench-server: workflows per second of the in-process dev server under a pool of SDK clients, without authorization,
## with Temporal's default mapper+authorizer, with temporal-opa's default policy, with the four example bundles and with
## decision logs and metrics on, and the share of each server's CPU spent in temporal-opa (a CPU profile of each slice)
## (about 7 minutes on an idle machine; TEMPORAL_OPA_BENCH_DURATION=20s TEMPORAL_OPA_BENCH_ROUNDS=3 TEMPORAL_OPA_BENCH_WARMUP=5s)
bench-server:
	$(GO) test -count=1 -run '^$$' -bench BenchmarkServerThroughput -benchtime 1x -timeout 60m ./server/internal/e2e/

## soak: the six-process PostgreSQL cluster under load through both frontends for SOAK_DURATION (default 10m) while
## bundles, the issuer's key, the bundle server, the issuer, the decision-log service, a frontend and PostgreSQL fail on a
## schedule; prints "soak figures:" (wrong decisions, failures by cause, decision-log events lost...), JSON to SOAK_REPORT
## if set. `make test` runs its 60s short form (one of each fault, shorter outages)
SOAK_DURATION ?= 10m
SOAK_REPORT   ?=
soak:
	SOAK_DURATION=$(SOAK_DURATION) SOAK_REPORT=$(if $(SOAK_REPORT),$(abspath $(SOAK_REPORT))) $(GO) test -count=1 -v -run '^TestSoak$$' -timeout 2h ./server/internal/e2e/

## fuzz: fuzz the token parser, and the server's decision path against whole-input decisions on generated policies (FUZZTIME=3m each)
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzGetClaims -fuzztime $(FUZZTIME) ./policy/claimmapper/
	$(GO) test -run '^$$' -fuzz FuzzProjection -fuzztime $(FUZZTIME) ./policy/

## image: the OCI image (FROM scratch, static ./temporal-opa, CA certificates, uid 1000) as IMAGE_ARCHIVE, built with buildah
IMAGE         ?= temporal-opa:latest
IMAGE_ARCHIVE ?= temporal-opa.oci.tar
image: build
	server/deploy/build-image.sh ./temporal-opa $(IMAGE_ARCHIVE) $(IMAGE)

## deps: install what the deployment tests and the docs' commands need (Debian, as root): PostgreSQL, buildah, jq, curl, git and openssl
deps:
	@if command -v buildah >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -f /etc/ssl/certs/ca-certificates.crt ] \
		&& command -v jq >/dev/null && command -v curl >/dev/null && command -v git >/dev/null && command -v openssl >/dev/null; then \
		echo "deps: postgresql, buildah, ca-certificates, jq, curl, git and openssl are installed"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql buildah ca-certificates jq curl git openssl; \
	fi

clean:
	rm -f temporal-opa $(IMAGE_ARCHIVE)

## cli-deps: the temporal CLI for the end-to-end tests, built once into .ci/bin (about 5 minutes of CPU the first time)
cli-deps:
	@[ -x $(TEMPORAL_CLI) ] || { echo "cli-deps: building the temporal CLI $(TEMPORAL_CLI_VERSION) into .ci/bin"; \
		GOBIN=$(CURDIR)/.ci/bin $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION); }

## browser-deps: Debian's chromium and the npm packages of the Web UI browser tests (server/internal/e2e/testdata/browser);
## when they cannot be installed the browser tests skip, saying so
BROWSER_DIR := server/internal/e2e/testdata/browser
APT_GET     := $(if $(filter 0,$(shell id -u)),,sudo -n) apt-get
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "browser-deps: installing chromium (apt-get)"; \
		$(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium >/dev/null; } || \
		echo "browser-deps: could not install chromium: the browser tests will be skipped"
	@cd $(BROWSER_DIR) && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } || \
		echo "browser-deps: npm ci failed in $(BROWSER_DIR): the browser tests will be skipped"
