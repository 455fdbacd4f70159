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

.PHONY: all run test build fmt fmt-check lint bench deps unit invariants

all: build

build:
	$(CARGO) build --workspace --all-targets

run:
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

bench:
	$(CARGO) run --release -p shoal-testkit --bin shoal-bench -- $(ARGS)

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
# Hook for the console (web/, built with npm): build it before the Rust tests (the server embeds
# web/dist) and run its unit and browser tests after them, e.g.
#	cd web && npm ci && npm run build && npm run test:unit
	$(MAKE) --no-print-directory unit
#	cd web && npm run test:e2e
