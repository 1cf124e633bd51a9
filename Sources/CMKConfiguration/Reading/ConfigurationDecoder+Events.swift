import Yams

extension ConfigurationDecoder {
    static let eventKeys = ["listen", "secret-file", "secret-credential", "allowed-origins"]

    /// `events`: `listen` (`127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`), the secret (a file or a
    /// systemd credential, exactly one) and `allowed-origins`.
    func decodeEvents(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Events {
        let section = try reader.mapping(node, at: "events", keys: Self.eventKeys,
                                         secretHint: "put the delivery secret in a systemd credential (secret-credential) or a 0600 file (secret-file) and name that instead")
        guard let listenNode = section["listen"] else {
            throw reader.error(.missingKey, "events.listen", "is required (accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path)", at: nil)
        }
        let listen = try decodeLocalListen(listenNode, at: "events.listen", what: "the receiver")
        let secret: EventSecretSource
        switch (section["secret-file"], section["secret-credential"]) {
        case (.some(let n), nil):
            secret = .file(try reader.path(n, at: "events.secret-file", base: stateDirectory))
        case (nil, .some(let n)):
            let name = try reader.string(n, at: "events.secret-credential", expected: "a systemd credential name")
            guard Self.isValidCredentialName(name) else {
                throw reader.error(.invalidValue, "events.secret-credential",
                                   "\(Excerpt.quoted(name)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: n)
            }
            secret = .credential(name)
        case (.some, .some(let n)):
            throw reader.error(.invalidValue, "events.secret-credential", "secret-file and secret-credential are both set: keep exactly one", at: n)
        case (nil, nil):
            throw reader.error(.missingKey, "events", "needs exactly one of secret-file (a 0600 file) or secret-credential (a systemd credential name) for the delivery secret", at: node)
        }
        var origins: [String] = []
        if let n = section["allowed-origins"] {
            for (index, item) in try reader.sequence(n, at: "events.allowed-origins", expected: "host names").enumerated() {
                let origin = try reader.string(item, at: "events.allowed-origins[\(index)]", expected: "a host name such as eventgrid.azure.net")
                guard !origin.isEmpty, origin.utf8.count <= 253,
                      origin.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "*" || $0 == ":") })
                else {
                    throw reader.error(.invalidValue, "events.allowed-origins[\(index)]", "\(Excerpt.quoted(origin)) is not a host name (accepted: letters, digits, '.', '-', ':', or * for any origin)", at: item)
                }
                origins.append(origin.lowercased())
            }
        }
        return SyncerConfiguration.Events(listen: listen, secret: secret, allowedOrigins: origins)
    }

    /// A loopback address with a port, or a unix socket (`events.listen`, `metrics.listen`): `what`
    /// (the receiver, the metrics endpoint) is never reachable from other machines.
    func decodeLocalListen(_ node: Node, at key: String, what: String) throws(ConfigurationError) -> SyncerConfiguration.Events.Listen {
        let accepted = "accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path"
        let text = try reader.string(node, at: key, expected: "an address (\(accepted))")
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard path.hasPrefix("/"), path.utf8.count < 108, !path.contains("\0") else {
                throw reader.error(.invalidValue, key, "\(Excerpt.quoted(text)) is not a unix socket path (an absolute path shorter than 108 bytes; \(accepted))", at: node)
            }
            return .unix(path: PathSyntax.normalise(path))
        }
        let host: String, port: Substring
        if text.hasPrefix("[::1]:") {
            host = "::1"
            port = text.dropFirst(6)
        } else if text.hasPrefix("127.") {
            let colon = text.lastIndex(of: ":") ?? text.endIndex
            host = String(text[..<colon])
            port = colon == text.endIndex ? "" : text[text.index(after: colon)...]
            let octets = host.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4, octets.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isASCII) && (UInt8($0) != nil) }) else {
                throw reader.error(.invalidValue, key, "\(Excerpt.quoted(text)) is not a loopback address (\(accepted))", at: node)
            }
        } else {
            throw reader.error(.invalidValue, key, "\(Excerpt.quoted(text)) is not a loopback address or unix socket: \(what) must not be reachable from other machines (\(accepted))", at: node)
        }
        guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(port), (1...65_535).contains(number) else {
            throw reader.error(.invalidValue, key, "\(Excerpt.quoted(text)) has no port from 1 to 65535 (\(accepted))", at: node)
        }
        return .tcp(host: host, port: number)
    }
}
