# Shoal's entry points. CI runs `make test` unchanged (see .ci/run).
#
#   make run     build everything, then start a dev server and three agents (scripts/dev-run.sh)
#   make test    system deps, fmt check, clippy -D warnings, invariants, build the binaries, every test
#   make build   build every crate and binary (debug)
#   make fmt     format the code
#   make lint    clippy with warnings as errors
#   make bench   run shoal-bench (release build); pass arguments with ARGS="..."
#   make deps    install the system packages the tests need (Debian, as root)

CARGO ?= cargo
ARGS ?=

.PHONY: all run test build fmt fmt-check lint bench bench-web bench-authz deps unit invariants web web-test

all: build

build:
	$(CARGO) build --workspace --all-targets

# The console (web/, TypeScript) is built before the binaries: the server serves web/dist (read
# from disk in debug builds, embedded in release builds).
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json web/openapi.json

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	npm --prefix web ci --no-audit --no-fund

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	npm --prefix web run build

web: web/dist/index.html

# Console unit checks and browser tests (headless Chromium against a real server and agents).
web-test: web
	npm --prefix web run test:unit
	npm --prefix web run test:e2e

run: web
	$(CARGO) build --workspace --bins
	scripts/dev-run.sh

deps:
	scripts/install-deps.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

invariants:
	scripts/check-invariants.sh

bench: deps web
	$(CARGO) run --release -p shoal-testkit --bin shoal-bench -- $(ARGS)

# The cost of authentication and authorization per API request (prints medians).
bench-authz:
	$(CARGO) test --release -p shoal-server --lib authz_bench -- --ignored --nocapture

bench-web: web
	$(CARGO) build --release -p shoal-cli -p shoal-agent
	npm --prefix web run bench

# The tests start `target/debug/shoal` and `target/debug/shoal-agent`, so the binaries are built
# before the test run. nextest when installed (parallel processes, clearer output), else cargo test.
unit:
	$(CARGO) build --workspace --bins
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

test:
	scripts/install-deps.sh
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/check-invariants.sh
	$(MAKE) --no-print-directory web
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory web-test
