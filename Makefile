# temporal-opa: make run (a secured dev server), make test (everything CI checks).
GO        ?= go
OPA       := $(GO) tool opa
SCHEMA    := rego/input.schema.json
DEFAULT   := rego/bundle
BUNDLES   := $(wildcard bundles/*/)
BENCHTIME ?= 1s
ARGS      ?=

# One compile for everything: the binary, the test binaries and the image share
# CGO_ENABLED=0 (a static binary; SQLite is pure Go). Only test-race needs cgo.
export CGO_ENABLED := 0

.PHONY: all run build test test-go test-race test-rego lint bench fuzz clean image deps

all: build

## run: start a secured single-process Temporal dev server (see README); flags via ARGS="--policy bundles/x"
run: build
	./temporal-opa start-dev $(ARGS)

## build: build the temporal-opa binary into ./temporal-opa
build:
	$(GO) build -o temporal-opa ./server

## test: Go tests, race tests of the policy library, and opa fmt/check/test/build of every policy
test: test-rego test-go test-race

# The e2e tests build the image from ./temporal-opa (TEMPORAL_OPA_BIN) instead of linking it again.
test-go: build
	TEMPORAL_OPA_BIN=$(CURDIR)/temporal-opa $(GO) test -count=1 ./...

# -race rebuilds all it links: only packages that do not link the whole server.
test-race:
	CGO_ENABLED=1 $(GO) test -count=1 -race ./policy/...

test-rego:
	$(OPA) fmt --fail --list $(DEFAULT) $(BUNDLES) || { echo "opa fmt: run 'go tool opa fmt -w $(DEFAULT) $(BUNDLES)'"; exit 1; }
	$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT)
	$(OPA) test --fail-on-empty $(DEFAULT)
	$(OPA) build -b --ignore '*_test.rego' -o /dev/null $(DEFAULT)
	@set -e; for b in $(BUNDLES); do \
		echo "== bundle $$b"; \
		$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT) $$b; \
		$(OPA) test --fail-on-empty $(DEFAULT) $$b; \
		$(OPA) build -b --ignore '*_test.rego' -o /dev/null $$b; \
	done

## lint: gofmt, go vet, opa fmt and opa check
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(OPA) fmt --fail --list $(DEFAULT) $(BUNDLES)
	$(OPA) check --strict --schema $(SCHEMA) $(DEFAULT)
	@set -e; for b in $(BUNDLES); do $(OPA) check --strict --schema $(SCHEMA) $(DEFAULT) $$b; done

## bench: our authorizer and claim mapper against Temporal's defaults, same inputs, same run
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./policy/...

## fuzz: fuzz the token parser (FUZZTIME=3m)
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzGetClaims -fuzztime $(FUZZTIME) ./policy/claimmapper/

## image: the OCI image (FROM scratch, static ./temporal-opa, CA certificates, uid 1000) as IMAGE_ARCHIVE, built with buildah
IMAGE         ?= temporal-opa:latest
IMAGE_ARCHIVE ?= temporal-opa.oci.tar
image: build
	server/deploy/build-image.sh ./temporal-opa $(IMAGE_ARCHIVE) $(IMAGE)

## deps: install what the deployment tests need (Debian, as root): PostgreSQL and buildah
deps:
	@if command -v buildah >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -f /etc/ssl/certs/ca-certificates.crt ]; then \
		echo "deps: postgresql, buildah and ca-certificates are installed"; \
	else \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql buildah ca-certificates; \
	fi

clean:
	rm -f temporal-opa $(IMAGE_ARCHIVE)
