import Yams

extension ConfigurationDecoder {
    static let postgresKeys = ["host", "socket-directory", "port", "database", "user", "password-credential", "password-file", "tls", "ca-file",
                               "pool-size", "statement-timeout", "connect-timeout", "lease-time"]

    /// `postgres`: the database of the `postgres` accounts (docs/configuration.md).
    func decodePostgres(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.PostgresSettings {
        let section = try reader.mapping(node, at: "postgres", keys: Self.postgresKeys,
                                         secretHint: "put the password in a systemd credential (password-credential) or a 0600 file (password-file) and name that instead")
        let endpoint: SyncerConfiguration.PostgresSettings.Endpoint
        switch (section["host"], section["socket-directory"]) {
        case (let host?, nil):
            let name = try reader.string(host, at: "postgres.host", expected: "a host name or address")
            guard !name.isEmpty, !name.contains("/"), !name.contains(" ") else {
                throw reader.error(.invalidValue, "postgres.host", "\(Excerpt.quoted(name)) is not a host name or address (for a unix socket use socket-directory)", at: host)
            }
            endpoint = .host(name)
        case (nil, let directory?):
            endpoint = .socketDirectory(try reader.path(directory, at: "postgres.socket-directory", base: stateDirectory))
        case (.some, .some):
            throw reader.error(.invalidValue, "postgres", "has both host and socket-directory: give exactly one", at: node)
        case (nil, nil):
            throw reader.error(.missingKey, "postgres.host", "is required (or socket-directory for a unix socket): where the PostgreSQL server listens", at: node)
        }
        func required(_ key: String, _ expected: String) throws(ConfigurationError) -> String {
            guard let n = section[key] else { throw reader.error(.missingKey, "postgres." + key, "is required: \(expected)", at: node) }
            let text = try reader.string(n, at: "postgres." + key, expected: expected)
            guard (1...63).contains(text.utf8.count) else {
                throw reader.error(.invalidValue, "postgres." + key, "\(Excerpt.quoted(text)) is not \(expected) (1-63 bytes)", at: n)
            }
            return text
        }
        let socket: Bool
        if case .socketDirectory = endpoint { socket = true } else { socket = false }
        var tls: SyncerConfiguration.PostgresSettings.TLS = socket ? .disable : .verifyFull
        if let n = section["tls"] {
            let accepted = SyncerConfiguration.PostgresSettings.TLS.allCases.map(\.rawValue)
            tls = .init(rawValue: try reader.choice(n, at: "postgres.tls", noun: "a TLS mode", accepted: accepted))!
            if socket, tls != .disable {
                throw reader.error(.invalidValue, "postgres.tls", "\(Excerpt.quoted(tls.rawValue)) needs host: a unix socket (socket-directory) has no TLS (accepted with socket-directory: disable)", at: n)
            }
        }
        var settings = SyncerConfiguration.PostgresSettings(endpoint: endpoint, database: try required("database", "a database name"),
                                                            user: try required("user", "a role name"), tls: tls)
        if let n = section["port"] { settings.port = try reader.int(n, at: "postgres.port", range: 1...65535) }
        switch (section["password-credential"], section["password-file"]) {
        case (let n?, nil):
            let name = try reader.string(n, at: "postgres.password-credential", expected: "a systemd credential name")
            guard Self.isValidCredentialName(name) else {
                throw reader.error(.invalidValue, "postgres.password-credential",
                                   "\(Excerpt.quoted(name)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: n)
            }
            settings.password = .credential(name)
        case (nil, let n?):
            settings.password = .file(try reader.path(n, at: "postgres.password-file", base: stateDirectory))
        case (.some, .some):
            throw reader.error(.invalidValue, "postgres", "has both password-credential and password-file: give at most one", at: node)
        case (nil, nil):
            break
        }
        if let n = section["ca-file"] {
            guard tls == .verifyFull else {
                throw reader.error(.invalidValue, "postgres.ca-file", "is only used with tls: verify-full (tls is \(Excerpt.quoted(tls.rawValue)))", at: n)
            }
            settings.caFile = try reader.path(n, at: "postgres.ca-file", base: stateDirectory)
        }
        if let n = section["pool-size"] { settings.poolSize = try reader.int(n, at: "postgres.pool-size", range: 1...100) }
        if let n = section["statement-timeout"] {
            settings.statementTimeout = try reader.duration(n, at: "postgres.statement-timeout", range: .seconds(1) ... .seconds(600), accepted: "1s to 10m")
        }
        if let n = section["connect-timeout"] {
            settings.connectTimeout = try reader.duration(n, at: "postgres.connect-timeout", range: .seconds(1) ... .seconds(60), accepted: "1s to 1m")
        }
        if let n = section["lease-time"] {
            settings.leaseTime = try reader.duration(n, at: "postgres.lease-time", range: .seconds(5) ... .seconds(3600), accepted: "5s to 1h")
        }
        return settings
    }
}
