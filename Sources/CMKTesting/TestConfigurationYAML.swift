/// What the test configurations that run the real `cmkctl` and `cmk-syncer` share after their
/// `vault` section: three accounts under `<state>/accounts`, created at first use (a directory
/// `file` account, an SQLite `sql` account, a directory `audit` account), a 1-minute interval and
/// text logs. Top-level YAML keys, to interpolate at the start of a line.
public enum TestConfigurationYAML {
    public static func threeAccounts(state: String) -> String {
        """
        accounts:
          - {name: files-1, kind: file, driver: directory, location: \(state)/accounts/files-1, create: true}
          - {name: sql-1, kind: sql, driver: sqlite, location: \(state)/accounts/sql-1.sqlite, create: true}
          - {name: audit-1, kind: audit, driver: directory, location: \(state)/accounts/audit-1, create: true}
        sync:
          interval: 1m
        logging:
          format: text
        """
    }
}
