extension SyncerConfiguration {
    /// The embedded default configuration, identical to `config/embedded.yaml` (a test checks): a
    /// local vault created on first run with its master key file under the state directory, key
    /// `data-at-rest-rsa2048`, and one account of each kind, all created on first run. It sets no
    /// `state-directory`: run it with `$STATE_DIRECTORY` pointing at a scratch folder. Parse it with
    /// ``parse(yaml:file:environment:workingDirectory:)`` and ``embeddedFileName``.
    public static let embeddedDefaultYAML = """
# cmk-syncer — the embedded default: a self-contained demo on one host.
#
# Everything lives under the state directory, which this file deliberately does not set:
# run it with STATE_DIRECTORY pointing at a scratch folder, for example
#
#   STATE_DIRECTORY=$PWD/.cmk-demo cmk-syncer --config config/embedded.yaml
#
# (under systemd, StateDirectory= sets it). Relative paths below resolve against the state
# directory. On first run the syncer creates the vault, a master key file (mode 0600), the root
# key and every account. Do not use this file in production: see cmk-syncer.example.yaml.

vault:
  provider: local
  key: data-at-rest-rsa2048
  local:
    directory: vault
    master-key-file: master.key
    create: true

accounts:
  - name: files-1
    kind: file
    driver: directory
    location: accounts/files-1
    create: true
  - name: sql-1
    kind: sql
    driver: sqlite
    location: accounts/sql-1.sqlite
    create: true
  - name: audit-1
    kind: audit
    driver: directory
    location: accounts/audit-1
    create: true
  - name: analytics-1
    kind: analytics
    driver: sqlite
    location: accounts/analytics-1.sqlite
    create: true
  - name: secrets-1
    kind: secret-store
    driver: sqlite
    location: accounts/secrets-1.sqlite
    create: true

"""

    /// The name the embedded default goes by in errors.
    public static let embeddedFileName = "<embedded>"
}
