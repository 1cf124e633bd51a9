# cmk-syncer. `make test` installs what is missing and runs every test.
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
export PATH := /opt/swift/usr/bin:$(PATH)

.PHONY: all build deps test run run-vault demo clean release release-binaries manual-generator release-for-deb deb test-deb bench bench-quick fuzz fuzz-smoke

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

# Builds the tests once, then runs them all. Serially: many tests drive real processes (the
# daemon, journald, systemd, crash-killed children), and on 2 cores running them side by side
# only makes them wait on each other. Meanwhile scripts/test.sh builds the release binaries for
# test-deb in the background at idle CPU priority (the suite mostly waits, so a core is mostly idle), and
# the fuzz targets too when CMK_PREBUILD_FUZZ=1 (.ci/run). `make test TESTS='--filter NAME'` runs
# a part of the suite.
TESTS ?=
test: deps
	$(SWIFT) build --build-tests
	@bash scripts/test.sh $(TESTS)
	$(MAKE) test-deb

# Runs the daemon in the foreground on the embedded default (./.cmk-demo).
run:
	@bash scripts/run-embedded.sh

# Runs cmk-vault, the customer's vault service, on https://127.0.0.1:8443 with a throw-away CA
# under ./.cmk-demo/vault (docs/vault-service.md). `make run` does not need it.
run-vault:
	@bash scripts/run-vault.sh

# A narrated tour on a throw-away embedded setup.
demo: deps
	$(SWIFT) build --product cmk-syncer
	$(SWIFT) build --product cmkctl
	@bash scripts/demo.sh

# Release binaries for the Debian package: the Swift runtime and Foundation linked statically,
# system libraries (libc, libsystemd, libsqlite3, libcrypto) dynamically. cmk-vault (Hummingbird)
# adds about 2 minutes to a cold release build (docs/packaging.md).
RELEASE_FLAGS := -c release --static-swift-stdlib --disable-local-rpath -Xlinker -z -Xlinker now
release: deps release-binaries
release-binaries:
	$(SWIFT) build $(RELEASE_FLAGS) --product cmk-syncer
	$(SWIFT) build $(RELEASE_FLAGS) --product cmkctl
	$(SWIFT) build $(RELEASE_FLAGS) --product cmk-vault

# swift-argument-parser's man page generator is an executable target of that dependency, not a
# product, so it is built from the resolved checkout with a scratch path of its own.
ARGUMENT_PARSER := .build/checkouts/swift-argument-parser
GENERATE_MANUAL_FLAGS := --package-path $(ARGUMENT_PARSER) --scratch-path .build/generate-manual -c release
DEB = dist/cmk-syncer_$(shell dpkg-parsechangelog -l packaging/debian/changelog -S Version)_$(shell dpkg --print-architecture).deb

# What `make deb` builds before packaging; scripts/test.sh builds it in the background during the tests.
release-for-deb: release-binaries manual-generator

# dist/cmk-syncer_<version>_<arch>.deb with cmk-syncer, cmkctl and cmk-vault (docs/packaging.md).
deb: release manual-generator
manual-generator:
	$(SWIFT) build $(GENERATE_MANUAL_FLAGS) --product generate-manual
	@bash packaging/build-deb.sh "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)" \
		"$$($(SWIFT) build $(GENERATE_MANUAL_FLAGS) --show-bin-path)/generate-manual" dist

# Installs the package into a temporary root and checks every file, script and tool on it.
test-deb: deb
	@bash packaging/test-deb.sh "$(DEB)" "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)" \
		"$$($(SWIFT) build $(GENERATE_MANUAL_FLAGS) --show-bin-path)/generate-manual"

# Benchmarks against openssl and the targets in docs/performance.md. Not part of the test suite.
# `bench` is the full run (about 35 minutes, 25 of them writing 1,000,000 security-log records);
# `bench-quick` takes under 7 minutes after the build.
# Both print a table and write JSON to bench-results/. Same release flags as the package, so the
# daemon measured is the one shipped and the build is shared.
bench: release
	$(SWIFT) build $(RELEASE_FLAGS) --product cmk-bench
	$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/cmk-bench run

bench-quick: release
	$(SWIFT) build $(RELEASE_FLAGS) --product cmk-bench
	$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/cmk-bench run --quick

# Fuzzing every parser of untrusted bytes with libFuzzer and AddressSanitizer (docs/testing/fuzzing.md):
# a separate package under Fuzz/ built into .build-fuzz, so `make test` and .build never see it.
# `fuzz` runs each target FUZZ_SECONDS seconds and prints executions, coverage and findings;
# `fuzz-smoke` is CI's bounded run. Both fail on any finding.
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 10
fuzz: deps
	@bash Fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	@bash Fuzz/run.sh $(FUZZ_SMOKE_SECONDS)

clean:
	rm -rf .build .build-fuzz dist
