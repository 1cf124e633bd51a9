# cmk-syncer. `make test` installs what is missing and runs every test.
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all build deps test run demo clean

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

clean:
	rm -rf .build
