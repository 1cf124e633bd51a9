#!/usr/bin/env bash
# Builds dist/cmk-syncer_<version>_<arch>.deb from release binaries that are already built
# (`make deb` builds them first). Usage:
#
#   packaging/build-deb.sh BIN_DIR GENERATE_MANUAL OUT_DIR
#
# BIN_DIR holds cmk-syncer, cmkctl and cmk-vault (swift build -c release --static-swift-stdlib),
# GENERATE_MANUAL is swift-argument-parser's generate-manual tool. The package is reproducible:
# file dates, man page dates and archive member dates all come from SOURCE_DATE_EPOCH, which
# defaults to the date of the newest entry in packaging/debian/changelog. Prints the .deb's path.
# Layout and decisions: docs/packaging.md.
set -euo pipefail

die() { echo "build-deb: $*" >&2; exit 1; }

[ $# -eq 3 ] || die "usage: $0 BIN_DIR GENERATE_MANUAL OUT_DIR"
bin_dir=$1 generate_manual=$2 out_dir=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
debian=$here/debian

for tool in dpkg-deb dpkg-shlibdeps dpkg-parsechangelog gzip strip; do
    command -v "$tool" >/dev/null || die "$tool is missing (make deps installs it)"
done
for exe in "$bin_dir/cmk-syncer" "$bin_dir/cmkctl" "$bin_dir/cmk-vault" "$generate_manual"; do
    [ -x "$exe" ] || die "$exe is missing or not executable"
done

# The version: the binaries' --version (CMKVersion.current) is the upstream version; the
# changelog's newest entry adds the Debian revision and must agree with it. (cmk-vault has no
# --version; it is built from the same tree in the same build.)
upstream=$("$bin_dir/cmk-syncer" --version)
ctl_version=$("$bin_dir/cmkctl" --version)
[ "$upstream" = "$ctl_version" ] || die "cmk-syncer --version ($upstream) and cmkctl --version ($ctl_version) differ"
version=$(dpkg-parsechangelog -l "$debian/changelog" -S Version)
[ "${version%-*}" = "$upstream" ] \
    || die "packaging/debian/changelog is at $version but the binaries are $upstream: add a changelog entry for $upstream-1"
arch=$(dpkg --print-architecture)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(dpkg-parsechangelog -l "$debian/changelog" -S Timestamp)}
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)

work=$(mktemp -d "${TMPDIR:-/tmp}/cmk-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/cmk-syncer

install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/lib/systemd/catalog" \
    "$root/etc/cmk-syncer" "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man8" "$doc" "$doc/examples" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d" "$root/usr/share/lintian/overrides"

# Binaries, stripped as dh_strip does (the unstripped ones stay in BIN_DIR for debugging).
for exe in cmk-syncer cmkctl cmk-vault; do
    install -m 0755 "$bin_dir/$exe" "$root/usr/bin/$exe"
    strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$exe"
done

install -m 0644 "$repo/systemd/cmk-syncer.service" "$root/lib/systemd/system/cmk-syncer.service"
install -m 0644 "$repo/systemd/cmk-syncer.catalog" "$root/usr/lib/systemd/catalog/cmk-syncer.catalog"
install -m 0644 "$here/cmk-syncer.yaml" "$root/etc/cmk-syncer/cmk-syncer.yaml"
# cmk-vault: its units and catalog as in the repository. Its configuration is an example only,
# not a conffile in /etc/cmk-vault: public-url and the TLS certificate are the site's, and the
# socket stays off until the administrator writes them (docs/packaging.md).
for unit in cmk-vault.socket cmk-vault.service; do
    install -m 0644 "$repo/systemd/$unit" "$root/lib/systemd/system/$unit"
done
install -m 0644 "$repo/systemd/cmk-vault.catalog" "$root/usr/lib/systemd/catalog/cmk-vault.catalog"
install -m 0644 "$repo/config/cmk-vault.example.yaml" "$doc/examples/cmk-vault.yaml"
# Example Prometheus alerting rules for both programs (docs/metrics.md): copied into a Prometheus's rule_files.
install -m 0644 "$here/cmk-syncer.rules.yml" "$doc/examples/cmk-syncer.rules.yml"

mkdir "$work/man"
# Man pages: generated from the argument parsers (one page per program, subcommands included),
# plus the hand-written configuration page.
for exe in cmk-syncer cmkctl; do
    "$generate_manual" "$root/usr/bin/$exe" --date "$man_date" --section 1 \
        --authors "cmk-syncer maintainers<cmk-syncer@example.com>" --output-directory "$work/man"
done
# cmk-vault is a system service, started by systemd: section 8, as its --help's man page reference says.
"$generate_manual" "$root/usr/bin/cmk-vault" --date "$man_date" --section 8 \
    --authors "cmk-syncer maintainers<cmk-syncer@example.com>" --output-directory "$work/man"
[ -f "$work/man/cmk-syncer.1" ] && [ -f "$work/man/cmkctl.1" ] && [ -f "$work/man/cmk-vault.8" ] \
    || die "generate-manual did not write cmk-syncer.1, cmkctl.1 and cmk-vault.8: $(ls "$work/man")"
# generate-manual copies a command's discussion verbatim; mdoc wants paragraph breaks as .Pp,
# not blank lines (groff warns "Empty input line").
for page in "$work"/man/*.[18]; do
    sed 's/^$/.Pp/' "$page" | gzip -9n >"$root/usr/share/man/man${page##*.}/$(basename "$page").gz"
done
gzip -9n <"$here/cmk-syncer.yaml.5" >"$root/usr/share/man/man5/cmk-syncer.yaml.5.gz"

# Completions, generated from the same parsers.
for exe in cmk-syncer cmkctl; do
    # bash-completion sources the file; the generated "#!/bin/bash" line has no use there.
    "$root/usr/bin/$exe" --generate-completion-script bash | sed '1{/^#!/d}' >"$root/usr/share/bash-completion/completions/$exe"
    "$root/usr/bin/$exe" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_$exe"
    "$root/usr/bin/$exe" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/$exe.fish"
done

install -m 0644 "$debian/copyright" "$doc/copyright"
install -m 0644 "$debian/README.Debian" "$doc/README.Debian"
gzip -9n <"$debian/changelog" >"$doc/changelog.Debian.gz"
for file in README.md docs/configuration.md docs/systemd.md docs/security-log.md docs/vault-service.md; do
    install -m 0644 "$repo/$file" "$doc/$(basename "$file")"
done
install -m 0644 "$debian/lintian-overrides" "$root/usr/share/lintian/overrides/cmk-syncer"

# Control area.
install -m 0755 "$debian/postinst" "$debian/prerm" "$debian/postrm" "$root/DEBIAN/"
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"

# Shared-library dependencies of the binaries (libc, libsystemd, libsqlite3, ...), as
# dpkg-shlibdeps computes them from the installed libraries' shlibs/symbols files.
mkdir -p "$work/src/debian"
printf 'Source: cmk-syncer\n\nPackage: cmk-syncer\nArchitecture: any\n' >"$work/src/debian/control"
(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/bin/cmk-syncer" "$root/usr/bin/cmkctl" "$root/usr/bin/cmk-vault") >"$work/shlibs"
depends=$(sed -n 's/^shlibs:Depends=//p' "$work/shlibs")
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies: $(cat "$work/shlibs")"

# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, plus one per directory.
installed_size=$(cd "$root" && find . -path ./DEBIAN -prune -o -printf '%y %s\n' \
    | awk '$1 == "f" { total += int(($2 + 1023) / 1024) } $1 != "f" { total += 1 } END { print total }')

sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@INSTALLED_SIZE@/$installed_size/" \
    -e "s/@DEPENDS@/$depends/" "$debian/control.in" >"$root/DEBIAN/control"
chmod 0644 "$root/DEBIAN/control"

(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# Reproducible metadata: fixed modes for directories and data files, one date for everything.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out_dir"
deb=$out_dir/cmk-syncer_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
