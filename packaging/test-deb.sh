#!/usr/bin/env bash
# Tests the Debian package: installs it for real into a temporary root and checks every file,
# the maintainer scripts, the binaries, man pages, completions, unit, catalog, configuration,
# lintian and reproducibility. Run by `make test-deb` (and so by `make test`):
#
#   packaging/test-deb.sh DEB BIN_DIR GENERATE_MANUAL
#
# BIN_DIR and GENERATE_MANUAL are what the package was built from (for the rebuild check).
# Every check prints "ok" or "FAIL"; a missing tool is a failure, never a skip. Exits 1 when
# anything failed. Needs root (dpkg --root installs files owned by root).
#
# The install: `dpkg --root=ROOT --force-script-chrootless` with a fresh admin directory runs the
# real maintainer scripts outside a chroot with DPKG_ROOT=ROOT; they honour DPKG_ROOT, so
# deb-systemd-helper and journalctl --update-catalog work on ROOT and nothing on this machine
# changes. ROOT holds only this package, so dependencies are checked separately against this
# machine (dpkg --dry-run) and the install uses --force-depends.
set -uo pipefail

[ $# -eq 3 ] || { echo "usage: $0 DEB BIN_DIR GENERATE_MANUAL" >&2; exit 2; }
deb=$(realpath "$1") bin_dir=$2 generate_manual=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
started=$(date +%s)

failures=0 checks=0
ok() { checks=$((checks + 1)); echo "ok   $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*" >&2; }
check() { # check DESCRIPTION COMMAND...: ok when the command succeeds; its output is shown on failure
    local description=$1 output; shift
    if output=$("$@" 2>&1); then ok "$description"; else fail "$description: $output"; fi
}

[ "$(id -u)" = 0 ] || { echo "test-deb: FAIL: must run as root (dpkg --root installs root-owned files)" >&2; exit 1; }
[ -f "$deb" ] || { echo "test-deb: FAIL: $deb does not exist (make deb)" >&2; exit 1; }
for tool in dpkg dpkg-deb lintian man lexgrog groff bash zsh fish systemd-analyze journalctl deb-systemd-helper python3 objdump openssl curl promtool; do
    command -v "$tool" >/dev/null || fail "tool $tool is missing (make deps installs it)"
done
((failures == 0)) || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cmk-test-deb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

version=$(dpkg-parsechangelog -l "$here/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
upstream=${version%-*}

# --- the archive -------------------------------------------------------------------------------

[ "$(basename "$deb")" = "cmk-syncer_${version}_${arch}.deb" ] && ok "file name cmk-syncer_${version}_${arch}.deb" \
    || fail "file name $(basename "$deb"), expected cmk-syncer_${version}_${arch}.deb"
for field in Package:cmk-syncer "Version:$version" "Architecture:$arch" Section:admin Priority:optional; do
    actual=$(dpkg-deb -f "$deb" "${field%%:*}")
    [ "$actual" = "${field#*:}" ] && ok "control ${field%%:*}: $actual" || fail "control ${field%%:*} is '$actual', expected '${field#*:}'"
done

# Every file and directory, with mode and owner: exactly this list, nothing more.
expected_listing=$(cat <<'EOF'
drwxr-xr-x root/root ./
drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./etc/cmk-syncer/
-rw-r--r-- root/root ./etc/cmk-syncer/cmk-syncer.yaml
drwxr-xr-x root/root ./lib/
drwxr-xr-x root/root ./lib/systemd/
drwxr-xr-x root/root ./lib/systemd/system/
-rw-r--r-- root/root ./lib/systemd/system/cmk-syncer.service
-rw-r--r-- root/root ./lib/systemd/system/cmk-vault.service
-rw-r--r-- root/root ./lib/systemd/system/cmk-vault.socket
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/cmk-syncer
-rwxr-xr-x root/root ./usr/bin/cmk-vault
-rwxr-xr-x root/root ./usr/bin/cmkctl
drwxr-xr-x root/root ./usr/lib/
drwxr-xr-x root/root ./usr/lib/systemd/
drwxr-xr-x root/root ./usr/lib/systemd/catalog/
-rw-r--r-- root/root ./usr/lib/systemd/catalog/cmk-syncer.catalog
-rw-r--r-- root/root ./usr/lib/systemd/catalog/cmk-vault.catalog
drwxr-xr-x root/root ./usr/share/
drwxr-xr-x root/root ./usr/share/bash-completion/
drwxr-xr-x root/root ./usr/share/bash-completion/completions/
-rw-r--r-- root/root ./usr/share/bash-completion/completions/cmk-syncer
-rw-r--r-- root/root ./usr/share/bash-completion/completions/cmkctl
drwxr-xr-x root/root ./usr/share/doc/
drwxr-xr-x root/root ./usr/share/doc/cmk-syncer/
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/README.Debian
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/README.md
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/changelog.Debian.gz
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/configuration.md
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/copyright
drwxr-xr-x root/root ./usr/share/doc/cmk-syncer/examples/
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/examples/cmk-syncer.rules.yml
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/examples/cmk-vault.yaml
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/security-log.md
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/systemd.md
-rw-r--r-- root/root ./usr/share/doc/cmk-syncer/vault-service.md
drwxr-xr-x root/root ./usr/share/fish/
drwxr-xr-x root/root ./usr/share/fish/vendor_completions.d/
-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/cmk-syncer.fish
-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/cmkctl.fish
drwxr-xr-x root/root ./usr/share/lintian/
drwxr-xr-x root/root ./usr/share/lintian/overrides/
-rw-r--r-- root/root ./usr/share/lintian/overrides/cmk-syncer
drwxr-xr-x root/root ./usr/share/man/
drwxr-xr-x root/root ./usr/share/man/man1/
-rw-r--r-- root/root ./usr/share/man/man1/cmk-syncer.1.gz
-rw-r--r-- root/root ./usr/share/man/man1/cmkctl.1.gz
drwxr-xr-x root/root ./usr/share/man/man5/
-rw-r--r-- root/root ./usr/share/man/man5/cmk-syncer.yaml.5.gz
drwxr-xr-x root/root ./usr/share/man/man8/
-rw-r--r-- root/root ./usr/share/man/man8/cmk-vault.8.gz
drwxr-xr-x root/root ./usr/share/zsh/
drwxr-xr-x root/root ./usr/share/zsh/vendor-completions/
-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_cmk-syncer
-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_cmkctl
EOF
)
actual_listing=$(dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }')
if [ "$actual_listing" = "$expected_listing" ]; then
    ok "contents: $(grep -c '^-' <<<"$actual_listing") files, modes and owners as expected"
else
    fail "contents differ from the expected list (- expected, + actual):
$(diff <(echo "$expected_listing") <(echo "$actual_listing") | grep '^[<>]' | sed 's/^</-/; s/^>/+/')"
fi
bad_dates=$(dpkg-deb --contents "$deb" | awk '{ print $4 }' | sort -u | wc -l)
[ "$bad_dates" = 1 ] && ok "every member has the same date (SOURCE_DATE_EPOCH)" || fail "members have $bad_dates different dates"

mkdir -p "$tmp/control"
dpkg-deb --control "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles")" = /etc/cmk-syncer/cmk-syncer.yaml ] && ok "conffiles: /etc/cmk-syncer/cmk-syncer.yaml" \
    || fail "conffiles is '$(cat "$tmp/control/conffiles")'"
for script in postinst prerm postrm; do
    check "$script is executable and valid sh" test -x "$tmp/control/$script" -a "$(head -1 "$tmp/control/$script")" = "#!/bin/sh"
    check "$script parses (sh -n)" sh -n "$tmp/control/$script"
done

# Depends covers every shared library the binaries need, each through the package that ships it.
depends=$(dpkg-deb -f "$deb" Depends)
depends_names=$(sed 's/([^)]*)//g; s/|/,/g' <<<"$depends" | tr ',' '\n' | tr -d ' ')
mkdir -p "$tmp/x"
dpkg-deb --extract "$deb" "$tmp/x"
for exe in cmk-syncer cmkctl cmk-vault; do
    for lib in $(objdump -p "$tmp/x/usr/bin/$exe" | awk '$1 == "NEEDED" { print $2 }'); do
        path=$(ldconfig -p | awk -v lib="$lib" '$1 == lib && /x86-64|AArch64|64bit/ { print $NF; exit }')
        [ -n "$path" ] || { fail "$exe needs $lib, which this machine does not have"; continue; }
        owner=$(dpkg -S "$path" 2>/dev/null | sed -n '1s/:.*//p')
        [ -n "$owner" ] || owner=$(dpkg -S "$(realpath "$path")" 2>/dev/null | sed -n '1s/:.*//p')
        if [ -z "$owner" ]; then
            fail "$exe needs $lib ($path), which no Debian package ships"
        elif grep -qxF "$owner" <<<"$depends_names"; then
            ok "$exe needs $lib: Depends has $owner"
        else
            fail "$exe needs $lib from $owner, missing from Depends: $depends"
        fi
    done
    runpath=$(objdump -p "$tmp/x/usr/bin/$exe" | awk '$1 == "RUNPATH" || $1 == "RPATH" { print $2 }')
    [ -z "$runpath" ] && ok "$exe has no RUNPATH" || fail "$exe has RUNPATH $runpath"
done
check "dependencies are satisfiable on this machine (dpkg --dry-run --install)" dpkg --dry-run --install "$deb"

# --- lintian -----------------------------------------------------------------------------------

lintian --info --display-info --pedantic "$deb" >"$tmp/lintian" 2>&1
lintian_status=$?
grep -E '^[EWIPX]: ' "$tmp/lintian" | sed 's/^/     lintian: /'
errors=$(grep -c '^E: ' "$tmp/lintian")
warnings=$(grep -c '^W: ' "$tmp/lintian")
if [ "$lintian_status" = 0 ] && [ "$errors" = 0 ] && [ "$warnings" = 0 ]; then
    ok "lintian: no errors, no warnings ($(grep -c '^[IP]: ' "$tmp/lintian") info/pedantic tags)"
else
    fail "lintian: status $lintian_status, $errors errors, $warnings warnings:
$(grep -E '^[EW]: |^[a-z]' "$tmp/lintian")"
fi

# --- a real install into a temporary root ------------------------------------------------------

mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/usr/lib/systemd/catalog"
# systemd's own catalog, as on a real system: the compiled database is rebuilt from it on removal.
cp /usr/lib/systemd/catalog/systemd.catalog "$root/usr/lib/systemd/catalog/" \
    || fail "no /usr/lib/systemd/catalog/systemd.catalog on this machine (package systemd)"
touch "$root/var/lib/dpkg/status" "$root/var/lib/dpkg/available"
dpkg_root() { dpkg --root="$root" --force-script-chrootless --force-depends --log=/dev/null "$@"; }
if dpkg_root --install "$deb" >"$tmp/install.log" 2>&1; then
    ok "dpkg --root --install ran the maintainer scripts"
else
    fail "dpkg --root --install failed: $(cat "$tmp/install.log")"
fi
grep -q "not started. Create the vault master key" "$tmp/install.log" \
    && ok "postinst tells a new installation to create the master key" \
    || fail "postinst printed no master-key guidance: $(cat "$tmp/install.log")"
grep -q "cmk-vault: not enabled. Write /etc/cmk-vault/cmk-vault.yaml" "$tmp/install.log" \
    && ok "postinst tells a new installation how to configure and enable cmk-vault" \
    || fail "postinst printed no cmk-vault guidance: $(cat "$tmp/install.log")"
status=$(dpkg-query --root="$root" -W -f='${Status} ${Version}' cmk-syncer 2>&1)
[ "$status" = "install ok installed $version" ] && ok "dpkg-query: $status" || fail "dpkg-query: $status"
check "dpkg --verify: every installed file matches md5sums" bash -c "[ -z \"\$(dpkg --root='$root' --verify cmk-syncer 2>&1)\" ]"

while read -r mode owner path; do
    [ "${path: -1}" = / ] && continue
    path=${path#.}
    actual=$(stat -c '%A %U/%G' "$root$path" 2>&1)
    [ "$actual" = "$mode $owner" ] || fail "installed $path is '$actual', expected '$mode $owner'"
done <<<"$expected_listing"
ok "every installed file exists with its mode and owner"

# The unit is neither enabled nor started by installation; deb-systemd-helper recorded it.
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/cmk-syncer.service" ] \
    && ok "the unit is not enabled on installation" || fail "installation enabled the unit"
[ -e "$root/var/lib/systemd/deb-systemd-helper-enabled/cmk-syncer.service.dsh-also" ] \
    && ok "deb-systemd-helper recorded the unit's state in the root" \
    || fail "no deb-systemd-helper state in the root: $(find "$root/var/lib/systemd" 2>&1)"
[ ! -e /var/lib/systemd/deb-systemd-helper-enabled/cmk-syncer.service.dsh-also ] \
    && ok "the host's deb-systemd-helper state is untouched" || fail "the maintainer scripts wrote to the host's deb-systemd-helper state"
# cmk-vault: neither the socket nor the service is enabled (nothing listens on a new installation).
enabled=$(find "$root/etc/systemd" -name 'cmk-vault.*' 2>/dev/null)
[ -z "$enabled" ] && ok "cmk-vault.socket and cmk-vault.service are not enabled on installation" \
    || fail "installation enabled cmk-vault: $enabled"
for unit in cmk-vault.socket cmk-vault.service; do
    [ -e "$root/var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also" ] \
        && ok "deb-systemd-helper recorded $unit's state in the root" || fail "no deb-systemd-helper state for $unit in the root"
    [ ! -e "/var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also" ] \
        || fail "the maintainer scripts wrote $unit's deb-systemd-helper state on the host"
done

# The catalog: postinst compiled it into the root; every MESSAGE_ID in the code has an entry.
[ -s "$root/var/lib/systemd/catalog/database" ] && ok "postinst compiled the catalog (journalctl --root --update-catalog)" \
    || fail "no catalog database in the root after postinst"
journalctl --root="$root" --dump-catalog >"$tmp/catalog" 2>"$tmp/catalog.err" || fail "journalctl --dump-catalog: $(cat "$tmp/catalog.err")"
ids=$(grep -oE '"[0-9a-f]{32}"' "$repo/Sources/CMKDaemon/MessageID.swift" | tr -d '"' | sort -u)
[ -n "$ids" ] || fail "no MESSAGE_IDs found in Sources/CMKDaemon/MessageID.swift"
vault_ids=$(grep -rhoE '"[0-9a-f]{32}"' "$repo/Sources/CMKVaultService" | tr -d '"' | sort -u)
[ -n "$vault_ids" ] || fail "no MESSAGE_IDs found in Sources/CMKVaultService"
ids="$ids $vault_ids"
missing=0
for id in $ids; do
    grep -q "^-- $id" "$tmp/catalog" || { fail "the compiled catalog has no entry for $id"; missing=$((missing + 1)); }
done
((missing == 0)) && ok "the compiled catalog has all $(wc -w <<<"$ids") MESSAGE_IDs of cmk-syncer and cmk-vault"

# The binaries run from the root.
actual=$("$root/usr/bin/cmk-syncer" --version 2>&1)
[ "$actual" = "$upstream" ] && ok "cmk-syncer --version: $actual" || fail "cmk-syncer --version: '$actual', expected $upstream"
actual=$("$root/usr/bin/cmkctl" --version 2>&1)
[ "$actual" = "$upstream" ] && ok "cmkctl --version: $actual" || fail "cmkctl --version: '$actual', expected $upstream"
help=$("$root/usr/bin/cmkctl" --help 2>&1) || fail "cmkctl --help exited non-zero: $help"
for command in status sync keys accounts data audit; do
    grep -qE "^ +$command " <<<"$help" || fail "cmkctl --help does not list '$command'"
done
ok "cmkctl --help lists status, sync, keys, accounts, data, audit"
check "cmk-syncer --help" "$root/usr/bin/cmk-syncer" --help
help=$("$root/usr/bin/cmk-vault" --help 2>&1) || fail "cmk-vault --help exited non-zero: $help"
grep -qE "^ +run " <<<"$help" && grep -qE "^ +check-config " <<<"$help" \
    && ok "cmk-vault --help lists run and check-config" || fail "cmk-vault --help: $help"
check "every shared library resolves (ldd)" bash -c "! ldd '$root/usr/bin/cmk-syncer' '$root/usr/bin/cmkctl' '$root/usr/bin/cmk-vault' | grep -F 'not found'"

# The installed configuration is valid and, with the unit's credential, brings up a vault and
# an account in sync: one pass of the installed daemon on the installed file.
check "cmk-syncer check-config accepts the installed configuration" \
    "$root/usr/bin/cmk-syncer" check-config --config "$root/etc/cmk-syncer/cmk-syncer.yaml"
credential=$(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$root/lib/systemd/system/cmk-syncer.service")
grep -qE "^ +master-key-credential: $credential( |$)" "$root/etc/cmk-syncer/cmk-syncer.yaml" \
    && ok "the configuration reads the unit's credential '$credential'" \
    || fail "the unit loads credential '$credential' but the configuration does not name it"
mkdir -p "$tmp/run/state" "$tmp/run/runtime" "$tmp/run/credentials"
(umask 077; head -c 32 /dev/urandom | base64 >"$tmp/run/credentials/$credential")
run_env=(env STATE_DIRECTORY="$tmp/run/state" RUNTIME_DIRECTORY="$tmp/run/runtime" CREDENTIALS_DIRECTORY="$tmp/run/credentials")
"${run_env[@]}" "$root/usr/bin/cmk-syncer" run --once --log-format text --config "$root/etc/cmk-syncer/cmk-syncer.yaml" \
    >"$tmp/run/log" 2>&1
status=$?
[ "$status" = 0 ] && ok "one pass of the installed daemon on the installed configuration: exit 0 (in sync)" \
    || fail "cmk-syncer run --once on the installed configuration exited $status: $(tail -20 "$tmp/run/log")"
"${run_env[@]}" "$root/usr/bin/cmkctl" status --report-only --config "$root/etc/cmk-syncer/cmk-syncer.yaml" --json \
    >"$tmp/run/status.json" 2>"$tmp/run/status.err"
check "cmkctl status --json after that pass: files-1 bound to the current version" python3 - "$tmp/run/status.json" <<'EOF'
import json, sys
status = json.load(open(sys.argv[1]))
assert status["exitCode"] == 0 and not status["neverRun"], status
report = status["report"]
assert report["state"] == "ok", report["state"]
accounts = {a["name"]: a for a in report["accounts"]}
assert set(accounts) == {"files-1"}, sorted(accounts)
assert accounts["files-1"]["binding"] == report["currentVersion"] and not accounts["files-1"]["suspended"], accounts
EOF

# The installed cmk-vault serves: the shipped example validates, and, adapted as an administrator
# would (public-url, a loopback port of its own instead of the socket, TLS files of a throw-away
# CA instead of the unit's credentials, a state directory here), the release binary answers the
# tenant's OpenID discovery document over HTTPS.
example=$root/usr/share/doc/cmk-syncer/examples/cmk-vault.yaml
check "cmk-vault check-config accepts the shipped example" "$root/usr/bin/cmk-vault" check-config --config "$example"
vault=$tmp/vault
mkdir -m 0700 "$vault"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=cmk test-deb CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$vault/ca.key" -out "$vault/ca.crt" >"$vault/openssl.log" 2>&1 \
    && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
        -keyout "$vault/tls.key" -out "$vault/tls.csr" >>"$vault/openssl.log" 2>&1 \
    && printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' >"$vault/tls.ext" \
    && openssl x509 -req -in "$vault/tls.csr" -CA "$vault/ca.crt" -CAkey "$vault/ca.key" -CAcreateserial -days 1 \
        -extfile "$vault/tls.ext" -out "$vault/tls.crt" >>"$vault/openssl.log" 2>&1 \
    || fail "openssl could not make the test CA: $(cat "$vault/openssl.log")"
chmod 600 "$vault/tls.key"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|^public-url: .*|public-url: https://127.0.0.1:$port|" -e "s|^listen: .*|listen: 127.0.0.1:$port|" \
    -e "s|certificate-credential: tls.crt|certificate-file: $vault/tls.crt|" -e "s|key-credential: tls.key|key-file: $vault/tls.key|" \
    -e "s|^# state-directory: .*|state-directory: $vault/state|" "$example" >"$vault/cmk-vault.yaml"
env -u NOTIFY_SOCKET -u LISTEN_FDS -u LISTEN_PID -u CREDENTIALS_DIRECTORY \
    "$root/usr/bin/cmk-vault" run --config "$vault/cmk-vault.yaml" >"$vault/log" 2>&1 &
vault_pid=$!
for _ in $(seq 300); do
    grep -q "The vault service is listening." "$vault/log" && break
    kill -0 "$vault_pid" 2>/dev/null || break
    sleep 0.1
done
tenant=$(sed -n 's/.*The vault service is listening\..* cmk_tenant=\([0-9a-f-]\{36\}\).*/\1/p' "$vault/log")
if [ -n "$tenant" ]; then
    curl -sS --max-time 20 --cacert "$vault/ca.crt" -o "$vault/discovery.json" -w '%{http_code}' \
        "https://127.0.0.1:$port/$tenant/v2.0/.well-known/openid-configuration" >"$vault/http" 2>"$vault/curl.err"
    check "the installed cmk-vault serves the tenant's discovery document over HTTPS" python3 - "$vault/discovery.json" "$(cat "$vault/http")" \
        "https://127.0.0.1:$port/$tenant/v2.0" <<'PY'
import json, sys
assert sys.argv[2] == "200", "HTTP " + sys.argv[2]
document = json.load(open(sys.argv[1]))
assert document["issuer"] == sys.argv[3], document
assert document["token_endpoint"] == sys.argv[3].replace("/v2.0", "/oauth2/v2.0/token"), document
PY
else
    fail "the installed cmk-vault did not start listening: $(tail -20 "$vault/log")"
fi
kill -TERM "$vault_pid" 2>/dev/null
wait "$vault_pid"
status=$?
[ "$status" = 0 ] && ok "the installed cmk-vault stops on SIGTERM with exit 0" || fail "cmk-vault exited $status on SIGTERM: $(tail -5 "$vault/log")"

# The example alerting rules: what Prometheus would load (promtool check rules on the installed file),
# with the alerts docs/metrics.md describes.
rules=$root/usr/share/doc/cmk-syncer/examples/cmk-syncer.rules.yml
check "promtool check rules passes on the installed examples/cmk-syncer.rules.yml" promtool check rules "$rules"
check "the installed rules are packaging/cmk-syncer.rules.yml" cmp "$rules" "$here/cmk-syncer.rules.yml"
for alert in CMKSyncerPassFailing CMKSyncerVaultUnreachable CMKSyncerKeyPulled CMKSyncerVersionDisabledInUse CMKSyncerKeyExpiringSoon \
    CMKSyncerNoSuccessfulPass CMKVaultTokenFailuresBurst CMKVaultSecurityLogFailing CMKVaultServerErrors; do
    grep -qx "      - alert: $alert" "$rules" || fail "the installed rules have no alert $alert"
done
ok "the installed rules hold the 9 alerts of docs/metrics.md"

# Man pages render without warnings (as lintian and man-db run them) and have a NAME line.
for page in "$root"/usr/share/man/man1/*.gz "$root"/usr/share/man/man5/*.gz "$root"/usr/share/man/man8/*.gz; do
    name=${page#"$root"}
    warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] && ok "man $name renders without warnings" || fail "man $name: $warnings"
    check "lexgrog $name finds the NAME section" lexgrog "$page"
done
rendered=$(man -l "$root/usr/share/man/man1/cmkctl.1.gz" 2>/dev/null)
for command in status sync keys accounts data audit rotate restore sweep verify; do
    grep -qw "$command" <<<"$rendered" || fail "cmkctl(1) does not mention '$command'"
done
ok "cmkctl(1) documents every command"
rendered=$(man -l "$root/usr/share/man/man8/cmk-vault.8.gz" 2>/dev/null)
grep -qw run <<<"$rendered" && grep -qw check-config <<<"$rendered" && grep -q "cmk-vault.socket" <<<"$rendered" \
    && ok "cmk-vault(8) documents run, check-config and the socket" || fail "cmk-vault(8) lacks run, check-config or cmk-vault.socket"
# Each page is read into a variable first: `producer | grep -q` under pipefail fails (SIGPIPE)
# when grep stops early, which would turn a match into a failure or a `!` check into a pass.
yaml_page=$(zcat "$root/usr/share/man/man5/cmk-syncer.yaml.5.gz" | sed 's/\\-/-/g')
for key in $(grep -oE '^\| `[a-z.\[\]-]+`' "$repo/docs/configuration.md" | tr -d '|` '); do
    grep -qF "$key" <<<"$yaml_page" \
        || fail "cmk-syncer.yaml(5) does not document $key (docs/configuration.md does)"
done
ok "cmk-syncer.yaml(5) names every key of docs/configuration.md"

# Completions parse, and register themselves for the right command.
for exe in cmk-syncer cmkctl; do
    check "bash -n completions/$exe" bash -n "$root/usr/share/bash-completion/completions/$exe"
    check "bash completion registers $exe" bash -c "source '$root/usr/share/bash-completion/completions/$exe' && complete -p $exe"
    check "zsh -n vendor-completions/_$exe" zsh -n "$root/usr/share/zsh/vendor-completions/_$exe"
    check "fish -n vendor_completions.d/$exe.fish" fish --no-execute "$root/usr/share/fish/vendor_completions.d/$exe.fish"
    check "fish completion registers $exe" bash -c "fish -c 'source $root/usr/share/fish/vendor_completions.d/$exe.fish; complete -c $exe' | grep -q ."
done

# The installed units against the installed binary paths: verify-unit.sh overlays /usr/bin with
# the installed binary in a private mount namespace (systemd-analyze --root lacks the targets and
# /bin/kill the unit refers to), so the installed unit files are verified unchanged.
for unit in cmk-syncer.service:cmk-syncer cmk-vault.socket:cmk-vault cmk-vault.service:cmk-vault; do
    exe=${unit#*:} unit=${unit%:*}
    verify=$(bash "$repo/Tests/CMKSystemdTests/Scripts/verify-unit.sh" "$root/lib/systemd/system/$unit" "$root/usr/bin/$exe" 2>&1)
    verify_status=$?
    verify_stderr=${verify#*--- stderr}
    if [ "$verify_status" = 0 ] && [ -z "$(tr -d '[:space:]' <<<"$verify_stderr")" ]; then
        ok "systemd-analyze verify: the installed $unit with the installed /usr/bin/$exe"
    else
        fail "systemd-analyze verify of the installed $unit (status $verify_status): $verify"
    fi
done

# --- conffile upgrade, remove, purge -----------------------------------------------------------

echo "# local edit" >>"$root/etc/cmk-syncer/cmk-syncer.yaml"
# The administrator configured cmk-vault and enabled its socket; an upgrade keeps that.
mkdir -p "$root/etc/cmk-vault"
cp "$example" "$root/etc/cmk-vault/cmk-vault.yaml"
systemctl --root="$root" enable cmk-vault.socket >"$tmp/enable.log" 2>&1 || fail "systemctl --root enable cmk-vault.socket: $(cat "$tmp/enable.log")"
socket_link=$root/etc/systemd/system/sockets.target.wants/cmk-vault.socket
[ -L "$socket_link" ] || fail "enabling cmk-vault.socket in the root made no link: $(find "$root/etc/systemd" 2>&1)"
if dpkg_root --force-confold --install "$deb" >"$tmp/reinstall.log" 2>&1; then
    ok "reinstall over an installed version (postinst configure with the old version)"
else
    fail "reinstall failed: $(cat "$tmp/reinstall.log")"
fi
[ "$(tail -1 "$root/etc/cmk-syncer/cmk-syncer.yaml")" = "# local edit" ] \
    && ok "a local edit of the conffile survives the reinstall" || fail "the reinstall lost the local conffile edit"
! grep -q "not started" "$tmp/reinstall.log" && ok "no master-key notice on upgrade" || fail "postinst repeated the notice on upgrade"
! grep -q "cmk-vault: not enabled" "$tmp/reinstall.log" && ok "no cmk-vault notice on upgrade" || fail "postinst repeated the cmk-vault notice on upgrade"
[ -L "$socket_link" ] && ok "the upgrade keeps cmk-vault.socket enabled" || fail "the upgrade lost the enablement of cmk-vault.socket"
[ ! -e "$root/etc/systemd/system/multi-user.target.wants/cmk-syncer.service" ] \
    && ok "the upgrade did not enable cmk-syncer.service" || fail "the upgrade enabled cmk-syncer.service"

mkdir -p "$root/var/lib/private/cmk-syncer/vault" "$root/var/lib/private/cmk-vault"
ln -s private/cmk-syncer "$root/var/lib/cmk-syncer"
ln -s private/cmk-vault "$root/var/lib/cmk-vault"
dpkg_root --remove cmk-syncer >"$tmp/remove.log" 2>&1 || fail "dpkg --remove failed: $(cat "$tmp/remove.log")"
[ ! -e "$root/usr/bin/cmk-syncer" ] && [ ! -e "$root/usr/bin/cmk-vault" ] && [ -e "$root/etc/cmk-syncer/cmk-syncer.yaml" ] \
    && [ -e "$root/etc/cmk-vault/cmk-vault.yaml" ] \
    && ok "remove: binaries gone, configuration kept" || fail "remove: unexpected files: $(ls "$root/usr/bin" "$root/etc/cmk-syncer" "$root/etc/cmk-vault" 2>&1)"
catalog_after_remove=$(journalctl --root="$root" --dump-catalog 2>/dev/null)
! grep -qE "Defined-By: cmk-(syncer|vault)" <<<"$catalog_after_remove" \
    && ok "remove: postrm dropped the catalog entries" || fail "remove: the compiled catalog still has cmk-syncer or cmk-vault entries"
dpkg_root --purge cmk-syncer >"$tmp/purge.log" 2>&1 || fail "dpkg --purge failed: $(cat "$tmp/purge.log")"
[ ! -e "$root/etc/cmk-syncer" ] && ok "purge: /etc/cmk-syncer removed" || fail "purge left $(ls -la "$root/etc/cmk-syncer")"
[ -d "$root/var/lib/private/cmk-syncer/vault" ] && [ -L "$root/var/lib/cmk-syncer" ] \
    && ok "purge: the state directory (vault, account data) is kept" || fail "purge deleted the state directory"
grep -q "kept /var/lib/cmk-syncer" "$tmp/purge.log" && ok "purge: says where the data was kept" || fail "purge: no notice about the kept state: $(cat "$tmp/purge.log")"
[ -d "$root/var/lib/private/cmk-vault" ] && [ -e "$root/etc/cmk-vault/cmk-vault.yaml" ] && grep -q "kept /var/lib/cmk-vault" "$tmp/purge.log" \
    && ok "purge: cmk-vault's state and the administrator's /etc/cmk-vault are kept, and it says so" \
    || fail "purge: cmk-vault's state or configuration was removed, or no notice: $(cat "$tmp/purge.log")"
[ ! -e "$socket_link" ] && [ ! -e "$root/var/lib/systemd/deb-systemd-helper-enabled/cmk-vault.socket.dsh-also" ] \
    && ok "purge: cmk-vault.socket's enablement and deb-systemd-helper state removed" \
    || fail "purge left cmk-vault.socket enabled or its state: $(find "$root/etc/systemd" "$root/var/lib/systemd/deb-systemd-helper-enabled" 2>&1)"
[ ! -e "$root/var/lib/systemd/deb-systemd-helper-enabled/cmk-syncer.service.dsh-also" ] \
    && ok "purge: deb-systemd-helper state removed" || fail "purge left deb-systemd-helper state"
status=$(dpkg-query --root="$root" -W -f='${db:Status-Status}' cmk-syncer 2>/dev/null)
[ -z "$status" ] || [ "$status" = not-installed ] && ok "purge: dpkg forgot the package" || fail "after purge dpkg says: $status"

# --- reproducibility ---------------------------------------------------------------------------

if rebuilt=$(bash "$here/build-deb.sh" "$bin_dir" "$generate_manual" "$tmp/rebuild" 2>"$tmp/rebuild.err"); then
    [ "$(sha256sum <"$rebuilt")" = "$(sha256sum <"$deb")" ] && ok "a rebuild is bit for bit identical ($(sha256sum <"$deb" | cut -c1-16)…)" \
        || fail "a rebuild differs: $(diff <(dpkg-deb -c "$deb") <(dpkg-deb -c "$rebuilt") | sed -n 1,10p)"
else
    fail "rebuild failed: $(cat "$tmp/rebuild.err")"
fi

echo "test-deb: $checks checks, $failures failed, $(($(date +%s) - started))s; $(basename "$deb") is $(stat -c %s "$deb") bytes"
((failures == 0))
