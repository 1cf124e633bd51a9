import CMKCore
import CryptoExtras
import Foundation
import Synchronization

/// The keys REST API of one emulated vault: routing, validation and the key state. Callers have
/// already passed authentication; everything here answers as Azure Key Vault answers.
final class VaultService: Sendable {
    /// The api-versions accepted; others get Azure's 400 "The specified version (…) is not recognized".
    static let apiVersions: Set<String> = ["7.4", "7.5", "7.6", "2025-07-01"]
    static let newestAPIVersion = "2025-07-01"
    static let rsaKeyOperations = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    static let allowedKeyOperations: Set<String> = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"]
    static let keySizes = [2048, 3072, 4096]

    struct State: Sendable {
        var keys: [String: KeyRecord] = [:]
        var deleted: [String: DeletedKeyRecord] = [:]
    }

    let configuration: AzureKeyVaultTestServer.Configuration
    let state = Mutex(State())
    let address: ServerAddress

    init(configuration: AzureKeyVaultTestServer.Configuration, address: ServerAddress) {
        self.configuration = configuration
        self.address = address
    }

    /// `https://127.0.0.1:PORT`, set once the listener is bound; key ids and `nextLink`s use it.
    var vaultURL: String { address.url }

    /// The vault's name as error messages show it.
    var vaultName: String { "emulated-vault" }

    var now: Int { Int(configuration.clock.now().timeIntervalSince1970.rounded(.down)) }

    func handle(_ request: ServerRequest) -> ServerResponse {
        do {
            let query = request.query
            guard let apiVersion = query["api-version"] else {
                throw KeyVaultError.badParameter("The api-version query parameter is missing.")
            }
            guard Self.apiVersions.contains(apiVersion) else {
                throw KeyVaultError.badParameter(
                    "The specified version (\(apiVersion)) is not recognized. Consider using the latest supported version (\(Self.newestAPIVersion)).")
            }
            purgeExpiredDeletions()
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
            let name = storedName(try validName(segments[1]))
            let rest = Array(segments.dropFirst(2))
            switch (method, rest) {
            case ("POST", ["create"]): return try createKey(name, body: request.body)
            case ("POST", ["rotate"]): return try rotateKey(name)
            case ("GET", ["versions"]): return try listVersions(name, query: query, apiVersion: apiVersion)
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
            let name = storedName(try validName(segments[1]))
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

    /// Key names are case-insensitive in Key Vault: state is keyed by the lowercased name, and
    /// answers show the name as it was created.
    private func storedName(_ name: String) -> String {
        state.withLock { $0.keys[name.lowercased()]?.name ?? $0.deleted[name.lowercased()]?.key.name } ?? name
    }

    /// Removes soft-deleted keys whose retention has passed (the service purges them itself).
    private func purgeExpiredDeletions() {
        let now = now
        state.withLock { state in state.deleted = state.deleted.filter { $0.value.scheduledPurgeDate > now } }
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
        Wire.JSONWebKey(kid: kid(name, record.version), kty: record.kty, key_ops: record.keyOps, n: Base64URL.encode(record.n), e: Base64URL.encode(record.e))
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
