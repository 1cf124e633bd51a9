@testable import CMKConfiguration
import Testing

/// `postgres` and `accounts[].driver: postgres` (docs/configuration.md): strict, each refusal at its key.
@Suite struct PostgresSettingsTests {
    static let accounts = """
        accounts:
          - name: sql-1
            kind: sql
            driver: postgres

        """

    @Test("a host with defaults, a socket directory with a credential, every tunable")
    func accepted() throws {
        let tcp = try Fixture.parse(Fixture.yaml(accounts: Self.accounts, "postgres: {host: db.example.net, database: cmk, user: cmk_syncer, password-file: pg.password}\n"))
        let settings = try #require(tcp.postgres)
        #expect(settings.endpoint == .host("db.example.net"))
        #expect(settings.port == 5432 && settings.tls == .verifyFull && settings.poolSize == 10 && settings.statementTimeout == .seconds(30))
        #expect(settings.password == .file("/var/lib/cmk-syncer/pg.password"))
        #expect(tcp.accounts[0].driver == .postgres && tcp.accounts[0].location == "postgres:sql-1")

        let socket = try Fixture.parse(Fixture.yaml(accounts: Self.accounts, """
            postgres:
              socket-directory: /run/postgresql
              port: 5433
              database: cmk
              user: cmk_syncer
              password-credential: cmk-postgres
              pool-size: 3
              statement-timeout: 5s
              connect-timeout: 2s
              lease-time: 30s

            """))
        let unix = try #require(socket.postgres)
        #expect(unix.endpoint == .socketDirectory("/run/postgresql") && unix.port == 5433 && unix.tls == .disable)
        #expect(unix.poolSize == 3 && unix.statementTimeout == .seconds(5) && unix.connectTimeout == .seconds(2) && unix.leaseTime == .seconds(30))
        #expect(settings.leaseTime == .seconds(120))
        #expect(try unix.passwordPath(environment: ["CREDENTIALS_DIRECTORY": "/run/credentials/cmk-syncer.service"]) == "/run/credentials/cmk-syncer.service/cmk-postgres")
        #expect(throws: ConfigurationError.self) { try unix.passwordPath(environment: [:]) }
    }

    @Test("refusals name the key and what is accepted")
    func refused() {
        let base = "host: db, database: cmk, user: u"
        let cases: [(String, String, String)] = [
            ("{database: cmk, user: u}", "postgres.host", "is required (or socket-directory for a unix socket): where the PostgreSQL server listens"),
            ("{host: db, socket-directory: /run/postgresql, database: cmk, user: u}", "postgres", "has both host and socket-directory: give exactly one"),
            ("{host: db, user: u}", "postgres.database", "is required: a database name"),
            ("{\(base), tls: prefer}", "postgres.tls", "'prefer' is not a TLS mode (accepted: disable, require, verify-full)"),
            ("{socket-directory: /run/postgresql, database: cmk, user: u, tls: require}", "postgres.tls",
             "'require' needs host: a unix socket (socket-directory) has no TLS (accepted with socket-directory: disable)"),
            ("{\(base), tls: require, ca-file: /etc/ca.pem}", "postgres.ca-file", "is only used with tls: verify-full (tls is 'require')"),
            ("{\(base), pool-size: 0}", "postgres.pool-size", "0 is out of range (accepted: 1 to 100)"),
            ("{\(base), statement-timeout: 1h}", "postgres.statement-timeout", "'1h' is out of range (accepted: 1s to 10m)"),
            ("{\(base), lease-time: 2s}", "postgres.lease-time", "'2s' is out of range (accepted: 5s to 1h)"),
            ("{\(base), lease-time: 2h}", "postgres.lease-time", "'2h' is out of range (accepted: 5s to 1h)"),
            ("{\(base), password-file: a, password-credential: b}", "postgres", "has both password-credential and password-file: give at most one"),
            ("{\(base), password-credential: a/b}", "postgres.password-credential",
             "'a/b' is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')"),
        ]
        for (section, key, reason) in cases {
            Fixture.expectFailure(Fixture.yaml(accounts: Self.accounts, "postgres: \(section)\n"), at: key, reason)
        }
        let secret = Fixture.failure(Fixture.yaml(accounts: Self.accounts, "postgres: {\(base), password: hunter2}\n"))
        #expect(secret?.code == .inlineSecret)
        #expect(secret.map { "\($0)".contains("hunter2") } == false)
        Fixture.expectFailure(Fixture.yaml(accounts: """
            accounts:
              - {name: sql-1, kind: sql, driver: postgres, location: /srv/x}

            """, "postgres: {\(base)}\n"), at: "accounts[0].location",
                              "is not used by the postgres driver: the account's rows are keyed by its name in the postgres database; remove location")
    }

    @Test("sync.instance-name: default none (the daemon's host name), a name of 1-64 letters, digits and . _ - : @, anything else refused at its key")
    func instanceName() throws {
        #expect(try Fixture.parse(Fixture.yaml("")).sync.instanceName == nil)
        #expect(try Fixture.parse(Fixture.yaml("sync: {instance-name: db-2.example:a@b_c}\n")).sync.instanceName == "db-2.example:a@b_c")
        let accepted = "(accepted: 1-64 letters, digits and . _ - : @; example: db-host-2)"
        for (name, shown) in [("'two words'", "'two words'"), ("''", "''"), ("a/b", "'a/b'"), (String(repeating: "x", count: 65), "'\(String(repeating: "x", count: 32))…'")] {
            Fixture.expectFailure(Fixture.yaml("sync: {instance-name: \(name)}\n"), at: "sync.instance-name", "\(shown) is not a daemon name \(accepted)")
        }
    }
}
