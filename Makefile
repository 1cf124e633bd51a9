# cmk-syncer. `make test` installs what is missing and runs every test.
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all build deps test run demo bench bench-quick clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Builds the tests once, then runs them all. Serially: many tests drive real processes (the
# daemon, journald, systemd, crash-killed children), and on 2 cores running them side by side
# only makes them wait on each other.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --no-parallel

# Runs the daemon in the foreground on the embedded default (./.cmk-demo).
run:
	@bash scripts/run-embedded.sh

# A narrated tour on a throw-away embedded setup.
demo: deps
	$(SWIFT) build --product cmk-syncer
	$(SWIFT) build --product cmkctl
	@bash scripts/demo.sh

# Benchmarks against openssl and the targets in docs/performance.md. Not part of the test suite.
# `bench` is the full run (about 20 minutes); `bench-quick` takes under 5 minutes after the build.
# Both print a table and write JSON to bench-results/.
bench: deps
	$(SWIFT) build -c release --product cmk-syncer
	$(SWIFT) build -c release --product cmk-bench
	$$($(SWIFT) build -c release --show-bin-path)/cmk-bench run

bench-quick: deps
	$(SWIFT) build -c release --product cmk-syncer
	$(SWIFT) build -c release --product cmk-bench
	$$($(SWIFT) build -c release --show-bin-path)/cmk-bench run --quick

clean:
	rm -rf .build
