import CMKCore
import CMKEntra
import CryptoExtras
import Foundation

/// The keys REST API of Azure Key Vault (its data plane for keys): routing, validation, the JSON
/// bodies and error codes as the real service sends them (the recordings in
/// `../shared/fixtures/azure-keyvault/` show them). The keys themselves are kept by a
/// ``KeyRecordStore``: in memory for the Azure test server, on disk for `cmk-vault` (next).
/// Callers have already passed authentication and authorization.
public final class KeyVaultAPI: Sendable {
    /// What the API needs besides its store.
    public struct Configuration: Sendable {
        /// Days a deleted key stays recoverable (7–90).
        public var retentionDays: Int
        /// Purge protection: purge is refused with 403 and `recoveryLevel` loses `+Purgeable`.
        public var purgeProtection: Bool
        public var clock: any WallClock
        /// The vault's name as error messages show it.
        public var vaultName: String

        public init(retentionDays: Int, purgeProtection: Bool, clock: any WallClock, vaultName: String) {
            self.retentionDays = retentionDays
            self.purgeProtection = purgeProtection
            self.clock = clock
            self.vaultName = vaultName
        }

        /// Azure's `recoveryLevel` for this retention and purge protection.
        public var recoveryLevel: String {
            let customized = retentionDays == 90 ? "" : "Customized"
            return purgeProtection ? "\(customized)Recoverable" : "\(customized)Recoverable+Purgeable"
        }
    }

    /// The api-versions accepted; others get Azure's 400 "The specified version (…) is not recognized".
    public static let apiVersions: Set<String> = ["7.4", "7.5", "7.6", "2025-07-01"]
    public static let newestAPIVersion = "2025-07-01"
    public static let rsaKeyOperations = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    static let allowedKeyOperations: Set<String> = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"]
    static let keySizes = [2048, 3072, 4096]

    public let configuration: Configuration
    let store: any KeyRecordStore
    private let baseURL: @Sendable () -> String

    /// - Parameter vaultURL: `https://host[:port]`, read at each request (key ids and `nextLink`s
    ///   use it; a test server knows its port only once bound).
    public init(configuration: Configuration, store: any KeyRecordStore = InMemoryKeyRecordStore(), vaultURL: @escaping @Sendable () -> String) {
        self.configuration = configuration
        self.store = store
        self.baseURL = vaultURL
    }

    var vaultURL: String { baseURL() }

    /// The vault's name as error messages show it.
    public var vaultName: String { configuration.vaultName }

    var now: Int { Int(configuration.clock.now().timeIntervalSince1970.rounded(.down)) }

    /// The answer to one keys-API request (`/keys…`, `/deletedkeys…`, with `api-version`).
    public func handle(_ request: ServerRequest) -> ServerResponse {
        do {
            let query = request.query
            guard let apiVersion = query["api-version"] else {
                throw KeyVaultError.badParameter("The api-version query parameter is missing.")
            }
            guard Self.apiVersions.contains(apiVersion) else {
                throw KeyVaultError.badParameter(
                    "The specified version (\(apiVersion)) is not recognized. Consider using the latest supported version (\(Self.newestAPIVersion)).")
            }
            return try route(request, query: query, apiVersion: apiVersion)
        } catch let error as KeyVaultError {
            return error.response
        } catch {
            return KeyVaultError.serverError(500).response
        }
    }

    private func route(_ request: ServerRequest, query: [String: String], apiVersion: String) throws -> ServerResponse {
        let segments = request.segments
        let method = request.method
        switch (segments.first, segments.count) {
        case ("keys", 1) where method == "GET":
            return try listKeys(query: query, apiVersion: apiVersion)
        case ("keys", 2...):
            let name = try storedName(try validName(segments[1]))
            let rest = Array(segments.dropFirst(2))
            switch (method, rest) {
            case ("POST", ["create"]): return try createKey(name, body: request.body)
            case ("POST", ["rotate"]): return try rotateKey(name)
            case ("GET", ["versions"]): return try listVersions(name, query: query, apiVersion: apiVersion)
            case ("GET", ["rotationpolicy"]): return try getRotationPolicy(name)
            case ("PUT", ["rotationpolicy"]): return try putRotationPolicy(name, body: request.body)
            case ("GET", []), ("GET", [""]): return try getKey(name, version: nil)
            case ("GET", let tail) where tail.count == 1: return try getKey(name, version: tail[0])
            case ("PATCH", []), ("PATCH", [""]): return try updateKey(name, version: nil, body: request.body)
            case ("PATCH", let tail) where tail.count == 1: return try updateKey(name, version: tail[0], body: request.body)
            case ("DELETE", []): return try deleteKey(name)
            case ("POST", let tail) where tail.count == 2:
                guard let operation = CryptoOperation(pathSegment: tail[1]) else { break }
                return try perform(operation, name: name, version: tail[0].isEmpty ? nil : tail[0], body: request.body)
            default: break
            }
        case ("deletedkeys", 1) where method == "GET":
            return try listDeletedKeys(query: query, apiVersion: apiVersion)
        case ("deletedkeys", 2...):
            let name = try storedName(try validName(segments[1]))
            switch (method, Array(segments.dropFirst(2))) {
            case ("GET", []): return try getDeletedKey(name)
            case ("DELETE", []): return try purgeDeletedKey(name)
            case ("POST", ["recover"]): return try recoverDeletedKey(name)
            default: break
            }
        default: break
        }
        throw KeyVaultError.badParameter("The operation \(method) \(request.path) is not supported by the keys API.")
    }

    private func validName(_ name: String) throws -> String {
        let allowed = name.utf8.allSatisfy { $0 == UInt8(ascii: "-") || (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
        guard !name.isEmpty, name.utf8.count <= 127, allowed else {
            throw KeyVaultError.badParameter("The request URI contains an invalid name: \(name)")
        }
        return name
    }

    /// Key names are case-insensitive in Key Vault: the store is keyed by the lowercased name, and
    /// answers show the name as it was created.
    private func storedName(_ name: String) throws -> String {
        let entry = try read(name)
        return entry.live?.name ?? entry.deleted?.key.name ?? name
    }

    /// The store's entry for `name`; a soft-deleted key whose retention has passed is gone.
    func read(_ name: String) throws -> KeyEntry {
        var entry = try store.entry(name.lowercased())
        if let deleted = entry.deleted, deleted.scheduledPurgeDate <= now { entry.deleted = nil }
        return entry
    }

    /// Runs `body` on the store's entry for `name` and keeps what it leaves, after removing a
    /// soft-deleted key whose retention has passed (the service purges those itself).
    func entry<R>(_ name: String, _ body: (inout KeyEntry) throws -> R) throws -> R {
        let now = now
        return try store.withEntry(name.lowercased()) { entry in
            if let deleted = entry.deleted, deleted.scheduledPurgeDate <= now { entry.deleted = nil }
            return try body(&entry)
        }
    }

    // MARK: - Rendering

    func kid(_ name: String, _ version: String) -> String { "\(vaultURL)/keys/\(name)/\(version)" }

    func attributes(_ record: KeyVersionRecord) -> Wire.Attributes {
        Wire.Attributes(
            enabled: record.enabled, key_size: record.keySize, nbf: record.notBefore, exp: record.expires,
            created: record.created, updated: record.updated, recoveryLevel: configuration.recoveryLevel,
            recoverableDays: configuration.retentionDays, exportable: false, hsmPlatform: record.kty == "RSA-HSM" ? "2" : "0")
    }

    func jsonWebKey(_ name: String, _ record: KeyVersionRecord) -> Wire.JSONWebKey {
        Wire.JSONWebKey(kid: kid(name, record.version), kty: record.kty, key_ops: record.keyOps, n: KeyVaultBase64URL.encode(record.n), e: KeyVaultBase64URL.encode(record.e))
    }

    func bundle(_ name: String, _ record: KeyVersionRecord) -> Wire.KeyBundle {
        Wire.KeyBundle(key: jsonWebKey(name, record), attributes: attributes(record), tags: record.tags)
    }

    func deletedBundle(_ deleted: DeletedKeyRecord) -> Wire.DeletedKeyBundle {
        let latest = deleted.key.latest
        return Wire.DeletedKeyBundle(
            recoveryId: "\(vaultURL)/deletedkeys/\(deleted.key.name)", deletedDate: deleted.deletedDate,
            scheduledPurgeDate: deleted.scheduledPurgeDate, key: jsonWebKey(deleted.key.name, latest), attributes: attributes(latest),
            tags: latest.tags)
    }

    /// Decodes a JSON request body; a missing or mistyped field is a 400 naming the field.
    func decode<T: Decodable>(_ type: T.Type, _ body: Data) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: body.isEmpty ? Data("{}".utf8) : body)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw KeyVaultError.badParameter("Invalid value for '\(field)': \(context.debugDescription)")
        } catch {
            throw KeyVaultError.badParameter("The request body is not valid JSON.")
        }
    }
}
