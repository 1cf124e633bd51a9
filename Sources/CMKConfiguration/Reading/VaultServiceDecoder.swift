import Foundation
import Yams

/// Turns a checked YAML tree into a ``VaultServiceConfiguration``.
struct VaultServiceDecoder {
    let reader: NodeReader
    let file: String
    let environment: [String: String]
    let workingDirectory: String

    static let tlsKeys = ["certificate-file", "certificate-credential", "key-file", "key-credential", "minimum-version"]
    static let limitKeys = ["max-body-bytes", "max-header-bytes", "max-page-size", "key-operations-per-10s"]
    static let authenticationKeys = ["failures-per-client", "failures-per-address", "failure-window"]
    static let vaultKeys = ["master-key-file", "master-key-credential", "retention-days", "purge-protection", "create-master-key", "rotation-check-interval"]

    func decode(_ root: Node) throws(ConfigurationError) -> VaultServiceConfiguration {
        guard case .mapping = root else {
            throw ConfigurationError(.wrongType, "is not a YAML mapping: a configuration is a mapping with the keys \(VaultServiceConfiguration.topLevelKeys.joined(separator: ", "))",
                                     file: file, line: root.mark?.line, column: root.mark?.column)
        }
        let top = try reader.mapping(root, at: "", keys: VaultServiceConfiguration.topLevelKeys)
        let stateDirectory = try decodeStateDirectory(top)
        guard let urlNode = top["public-url"] else {
            throw reader.error(.missingKey, "public-url", "is required: the service's origin as clients reach it, e.g. https://vault.example.com:8443", at: nil)
        }
        let publicURL = try decodePublicURL(urlNode)
        let listen = try top["listen"].map { (n) throws(ConfigurationError) in try decodeListen(n) } ?? .systemd
        guard let tlsNode = top["tls"] else {
            throw reader.error(.missingKey, "tls", "is required: a mapping with certificate-file or certificate-credential, and key-file or key-credential", at: nil)
        }
        let tls = try decodeTLS(tlsNode, base: stateDirectory)
        let vault = try top["vault"].map { (n) throws(ConfigurationError) in try decodeVault(n, base: stateDirectory) }
        let limits = try decodeLimits(top["limits"])
        let authentication = try decodeAuthentication(top["authentication"])
        let common = ConfigurationDecoder(reader: reader, file: file, environment: environment, workingDirectory: workingDirectory)
        let logging = try common.decodeLogging(top["logging"])
        var configuration = VaultServiceConfiguration(file: file, stateDirectory: stateDirectory, publicURL: publicURL, listen: listen, tls: tls, vault: vault,
                                                      limits: limits, authentication: authentication, logging: logging)
        configuration.events = try top["events"].map { (n) throws(ConfigurationError) in try decodeEvents(n, base: stateDirectory) }
        configuration.metrics = try top["metrics"].map { (n) throws(ConfigurationError) in try common.decodeMetrics(n) }
        return configuration
    }

    private func decodeStateDirectory(_ top: Section) throws(ConfigurationError) -> String {
        if let node = top["state-directory"] {
            return try reader.path(node, at: "state-directory", base: PathSyntax.directory(of: file))
        }
        guard let value = environment["STATE_DIRECTORY"], !value.isEmpty else { return VaultServiceConfiguration.defaultStateDirectory }
        let first = String(value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
        switch PathSyntax.resolve(first, against: workingDirectory) {
        case .success(let path): return path
        case .failure(let refusal): throw reader.error(.invalidValue, "state-directory", "the default from $STATE_DIRECTORY \(refusal.reason)", at: nil)
        }
    }

    /// `https://host[:port]` with nothing after the authority (a trailing `/` is dropped).
    private func decodePublicURL(_ node: Node) throws(ConfigurationError) -> String {
        var text = try reader.string(node, at: "public-url", expected: "an https URL such as https://vault.example.com:8443")
        while text.hasSuffix("/") { text.removeLast() }
        guard let components = URLComponents(string: text), components.scheme == "https", let host = components.host, !host.isEmpty,
              components.path.isEmpty, components.query == nil, components.fragment == nil, components.user == nil, components.password == nil
        else {
            throw reader.error(.invalidValue, "public-url", "\(Excerpt.quoted(text)) is not an https origin (accepted: https://HOST or https://HOST:PORT, no path, query or user)", at: node)
        }
        return text
    }

    /// `systemd`, `HOST:PORT` or `[IPv6]:PORT`.
    private func decodeListen(_ node: Node) throws(ConfigurationError) -> VaultServiceConfiguration.Listen {
        let accepted = "accepted: systemd (the socket of cmk-vault.socket), HOST:PORT or [IPv6]:PORT"
        let text = try reader.string(node, at: "listen", expected: "an address (\(accepted))")
        if text == "systemd" { return .systemd }
        let host: Substring, port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") {
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            throw reader.error(.invalidValue, "listen", "\(Excerpt.quoted(text)) is not an address (\(accepted))", at: node)
        }
        guard !host.isEmpty, port.allSatisfy(\.isASCII), let number = Int(port), (1...65_535).contains(number) else {
            throw reader.error(.invalidValue, "listen", "\(Excerpt.quoted(text)) is not an address with a port from 1 to 65535 (\(accepted))", at: node)
        }
        return .address(host: String(host), port: number)
    }

    private func decodeTLS(_ node: Node, base: String) throws(ConfigurationError) -> VaultServiceConfiguration.TLS {
        let section = try reader.mapping(node, at: "tls", keys: Self.tlsKeys,
                                         secretHint: "name a PEM file with key-file or a systemd credential with key-credential")
        let certificate = try source(section, "certificate", base: base, what: "the certificate chain (PEM)")
        let key = try source(section, "key", base: base, what: "the private key (PEM, 0600)")
        var tls = VaultServiceConfiguration.TLS(certificate: certificate, key: key)
        if let n = section["minimum-version"] {
            tls.minimumVersion = try reader.choice(n, at: "tls.minimum-version", noun: "a TLS version", accepted: ["1.2", "1.3"])
        }
        return tls
    }

    /// `SECTION.NAME-file` or `SECTION.NAME-credential`, exactly one.
    func source(_ section: Section, _ name: String, base: String, what: String, in sectionName: String = "tls") throws(ConfigurationError) -> VaultServiceConfiguration.Source {
        let fileKey = "\(name)-file", credentialKey = "\(name)-credential"
        switch (section[fileKey], section[credentialKey]) {
        case (.some(let node), nil):
            return .file(try reader.path(node, at: "\(sectionName).\(fileKey)", base: base))
        case (nil, .some(let node)):
            let value = try reader.string(node, at: "\(sectionName).\(credentialKey)", expected: "a systemd credential name")
            guard ConfigurationDecoder.isValidCredentialName(value) else {
                throw reader.error(.invalidValue, "\(sectionName).\(credentialKey)", "\(Excerpt.quoted(value)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: node)
            }
            return .credential(value)
        case (.some, .some(let node)):
            throw reader.error(.invalidValue, "\(sectionName).\(credentialKey)", "\(fileKey) and \(credentialKey) are both set: keep exactly one", at: node)
        case (nil, nil):
            throw reader.error(.missingKey, sectionName, "needs exactly one of \(fileKey) (a path) or \(credentialKey) (a systemd credential name) for \(what)", at: section.node)
        }
    }

    private func decodeVault(_ node: Node, base: String) throws(ConfigurationError) -> VaultServiceConfiguration.KeyVault {
        let section = try reader.mapping(node, at: "vault", keys: Self.vaultKeys,
                                         secretHint: "name a file with master-key-file or a systemd credential with master-key-credential")
        var vault = VaultServiceConfiguration.KeyVault(
            masterKey: try source(section, "master-key", base: base, what: "the 32-byte master key that seals the private keys", in: "vault"))
        if let n = section["retention-days"] { vault.retentionDays = try reader.int(n, at: "vault.retention-days", range: 7...90) }
        if let n = section["purge-protection"] { vault.purgeProtection = try reader.bool(n, at: "vault.purge-protection") }
        if let n = section["rotation-check-interval"] {
            vault.rotationCheckInterval = try reader.duration(n, at: "vault.rotation-check-interval", range: .seconds(1) ... .seconds(3600), accepted: "1s to 1h")
        }
        if let n = section["create-master-key"] {
            vault.createMasterKey = try reader.bool(n, at: "vault.create-master-key")
            if vault.createMasterKey, case .credential = vault.masterKey {
                throw reader.error(.invalidValue, "vault.create-master-key", "is true but the master key is a systemd credential, which the service cannot create: set master-key-file, or create-master-key: false", at: n)
            }
        }
        return vault
    }

    private func decodeLimits(_ node: Node?) throws(ConfigurationError) -> VaultServiceConfiguration.Limits {
        let section = try reader.optionalMapping(node, at: "limits", keys: Self.limitKeys)
        var limits = VaultServiceConfiguration.Limits()
        if let n = section["max-body-bytes"] { limits.maxBodyBytes = try reader.int(n, at: "limits.max-body-bytes", range: 1_024...1_048_576) }
        if let n = section["max-header-bytes"] { limits.maxHeaderBytes = try reader.int(n, at: "limits.max-header-bytes", range: 4_096...65_536) }
        if let n = section["max-page-size"] { limits.maxPageSize = try reader.int(n, at: "limits.max-page-size", range: 1...10_000) }
        if let n = section["key-operations-per-10s"] { limits.keyOperationsPer10s = try reader.int(n, at: "limits.key-operations-per-10s", range: 0...1_000_000) }
        return limits
    }

    private func decodeAuthentication(_ node: Node?) throws(ConfigurationError) -> VaultServiceConfiguration.Authentication {
        let section = try reader.optionalMapping(node, at: "authentication", keys: Self.authenticationKeys)
        var settings = VaultServiceConfiguration.Authentication()
        if let n = section["failures-per-client"] { settings.failuresPerClient = try reader.int(n, at: "authentication.failures-per-client", range: 1...10_000) }
        if let n = section["failures-per-address"] { settings.failuresPerAddress = try reader.int(n, at: "authentication.failures-per-address", range: 1...100_000) }
        if let n = section["failure-window"] {
            settings.failureWindow = try reader.duration(n, at: "authentication.failure-window", range: .seconds(10)...(.seconds(86_400)), accepted: "10s to 24h")
        }
        return settings
    }
}
