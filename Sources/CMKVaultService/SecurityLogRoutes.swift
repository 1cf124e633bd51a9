import CMKIdentity
import CMKTransparency
import CMKVaultLog
import Foundation
import HTTPTypes
import Hummingbird

/// The Security Logs API (docs/vault-service.md, "Security Logs API"), for administrators and
/// the service principal:
///
/// | route | what |
/// |---|---|
/// | `GET /v1.0/securityLogs/records` | records with their leaf bytes, paged (`$top`, `$skiptoken`, `@odata.nextLink`), filtered by `from`, `to`, `actor`, `operation` |
/// | `GET /v1.0/securityLogs/checkpoint` | the signed checkpoint of the current size (text/plain signed note) |
/// | `GET /v1.0/securityLogs/proofs/inclusion?index=&size=` | an RFC 9162 inclusion proof |
/// | `GET /v1.0/securityLogs/proofs/consistency?from=&to=` | an RFC 9162 consistency proof |
/// | `GET /v1.0/securityLogs/publicKey` | the checkpoint verifier key and the origin |
/// | `GET /v1.0/access` | who can touch the key right now |
///
/// Reading the log is not itself recorded (a read would grow the log it reads).
struct SecurityLogRoutes: Sendable {
    let routes: VaultRoutes
    let log: VaultSecurityLog

    /// The response header carrying when the checkpoint of this size was first signed (not signed itself).
    static let checkpointTimeHeader = HTTPField.Name("CMK-Checkpoint-Time")!

    func register(on router: Router<VaultRequestContext>) {
        let group = router.group("v1.0").add(middleware: BearerAuthentication(routes: routes, roles: [.administrator, .servicePrincipal]))
        group.get("securityLogs/records") { request, context in try records(request, context: context) }
        group.get("securityLogs/checkpoint") { request, context in
            _ = try Self.query(request, allowed: [])
            let checkpoint = try answer(context) { try log.checkpoint() }
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store",
                                                   Self.checkpointTimeHeader: GraphDate.string(checkpoint.time)],
                            body: .init(byteBuffer: ByteBuffer(string: checkpoint.note)))
        }
        group.get("securityLogs/proofs/inclusion") { request, context in
            let query = try Self.query(request, allowed: ["index", "size"])
            let index = try Self.number(query, "index"), size = try Self.number(query, "size")
            let hashes = try answer(context) { try log.inclusionProof(index: index, size: size) }
            return JSONResponse(value: InclusionProof(index: index, size: size, hashes: hashes.map(\.base64)))
        }
        group.get("securityLogs/proofs/consistency") { request, context in
            let query = try Self.query(request, allowed: ["from", "to"])
            let from = try Self.number(query, "from"), to = try Self.number(query, "to")
            let hashes = try answer(context) { try log.consistencyProof(from: from, to: to) }
            return JSONResponse(value: ConsistencyProof(from: from, to: to, hashes: hashes.map(\.base64)))
        }
        group.get("securityLogs/publicKey") { request, _ in
            _ = try Self.query(request, allowed: [])
            return JSONResponse(value: PublicKey(verifierKey: log.verifier.verifierKey, origin: log.origin))
        }
        group.get("access") { request, _ in
            _ = try Self.query(request, allowed: [])
            return JSONResponse(value: try access())
        }
    }

    // MARK: Records

    struct RecordItem: Encodable, Sendable {
        var index: UInt64
        /// Base64 of the record's canonical JSON: the Merkle leaf, byte for byte.
        var leaf: String
        var record: SecurityLogRecord
    }

    struct RecordPage: Encodable, Sendable {
        var value: [RecordItem]
        var nextLink: String?
        /// The log's size when the page was read.
        var treeSize: UInt64

        enum CodingKeys: String, CodingKey {
            case value, treeSize
            case nextLink = "@odata.nextLink"
        }
    }

    func records(_ request: Request, context: VaultRequestContext) throws -> JSONResponse<RecordPage> {
        let query = try Self.query(request, allowed: ["from", "to", "actor", "operation", "$top", "$skiptoken"])
        let top = try query["$top"].map { _ in try Self.number(query, "$top") } ?? UInt64(routes.maxPageSize)
        guard top >= 1, top <= UInt64(routes.maxPageSize) else {
            throw ServiceError.badRequest("$top must be 1 to \(routes.maxPageSize) (limits.max-page-size)")
        }
        let start = try query["$skiptoken"].map { _ in try Self.number(query, "$skiptoken") } ?? 0
        let from = try query["from"].map { try Self.time($0, "from") }
        let to = try query["to"].map { try Self.time($0, "to") }
        let size = try answer(context) { try log.size() }
        let page = try answer(context) {
            try log.records(.init(from: from, to: to, actor: query["actor"], operation: query["operation"], startIndex: start, limit: Int(top)))
        }
        let items = try page.leaves.map { entry in
            RecordItem(index: entry.index, leaf: entry.leaf.base64EncodedString(), record: try SecurityLogRecord(leaf: entry.leaf))
        }
        var next: String?
        if let nextIndex = page.nextIndex {
            var components = URLComponents()
            components.queryItems = query.filter { $0.key != "$skiptoken" }.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
                + [URLQueryItem(name: "$skiptoken", value: String(nextIndex))]
            let encoded = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
            next = routes.publicURL + "/v1.0/securityLogs/records?" + encoded
        }
        return JSONResponse(value: RecordPage(value: items, nextLink: next, treeSize: size))
    }

    // MARK: Proofs and key

    struct InclusionProof: Encodable, Sendable {
        var index: UInt64
        var size: UInt64
        var hashes: [String]
    }

    struct ConsistencyProof: Encodable, Sendable {
        var from: UInt64
        var to: UInt64
        var hashes: [String]
    }

    struct PublicKey: Encodable, Sendable {
        var verifierKey: String
        var origin: String
    }

    // MARK: Access

    struct Access: Encodable, Sendable {
        struct Administrator: Encodable, Sendable {
            var clientId: String
            var name: String
            var created: Date
            var lastUsed: Date?
        }
        struct Key: Encodable, Sendable {
            var keyId: String
            var displayName: String
            var startDateTime: Date
            var endDateTime: Date
            var lastUsed: Date?
        }
        struct ServicePrincipal: Encodable, Sendable {
            var appId: String
            var passwordCredentials: [Key]
        }
        struct Platform: Encodable, Sendable {
            var clientId: String
            var host: String
            var created: Date
            var lastUsed: Date?
        }
        var tenantId: String
        var administrators: [Administrator]
        var servicePrincipal: ServicePrincipal
        var platformIdentities: [Platform]
    }

    func access() throws -> Access {
        let store = routes.store
        do {
            let usage = Dictionary(try store.servicePrincipalCredentialUsage().map { ($0.keyId, $0.lastUsed) }, uniquingKeysWith: { first, _ in first })
            return Access(
                tenantId: store.tenant.tenantID,
                administrators: try store.administrators().map { .init(clientId: $0.clientID, name: $0.name, created: $0.created, lastUsed: $0.lastUsed) },
                servicePrincipal: .init(appId: store.tenant.servicePrincipalClientID, passwordCredentials: try store.servicePrincipalCredentials().map {
                    .init(keyId: $0.keyId, displayName: $0.displayName, startDateTime: $0.startDateTime, endDateTime: $0.endDateTime, lastUsed: usage[$0.keyId] ?? nil)
                }),
                platformIdentities: try store.platformIdentities().map { .init(clientId: $0.clientID, host: $0.name, created: $0.created, lastUsed: $0.lastUsed) })
        } catch let error as IdentityError {
            throw VaultRoutes.answer(error)
        }
    }

    // MARK: Parameters

    /// The query's parameters, percent-decoded; an unknown or repeated one is a 400 naming what is accepted.
    static func query(_ request: Request, allowed: Set<String>) throws -> [String: String] {
        var result: [String: String] = [:]
        for (rawKey, value) in request.uri.queryParameters {
            let key = String(rawKey).removingPercentEncoding ?? String(rawKey)
            guard allowed.contains(key) else {
                throw ServiceError.badRequest("unknown query parameter '\(String(key.prefix(64)))' (accepted: \(allowed.isEmpty ? "none" : allowed.sorted().joined(separator: ", ")))")
            }
            guard result[key] == nil else { throw ServiceError.badRequest("the query parameter '\(key)' is given more than once") }
            result[key] = String(value)
        }
        return result
    }

    /// A required non-negative decimal parameter.
    static func number(_ query: [String: String], _ name: String) throws -> UInt64 {
        guard let text = query[name] else { throw ServiceError.badRequest("the query parameter '\(name)' is required") }
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let value = UInt64(text) else {
            throw ServiceError.badRequest("the query parameter '\(name)' must be a non-negative decimal number")
        }
        return value
    }

    static func time(_ text: String, _ name: String) throws -> Date {
        guard let date = SecurityLogRecord.parseTime(text) else {
            throw ServiceError.badRequest("the query parameter '\(name)' must be an RFC 3339 time such as 2026-12-05T07:00:00Z")
        }
        return date
    }

    /// Runs a log call; an out-of-range request is a 400 with the log's reason, anything else a
    /// 500 (the reason in the journal, not in the answer).
    func answer<T>(_ context: VaultRequestContext, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as VaultLogError where error.code == .outOfRange {
            throw ServiceError(.badRequest, "BadParameter", error.detail)
        } catch {
            context.logger.error("The security log could not answer a request.", metadata: ["cmk_error": .string("\(error)")])
            throw ServiceError(.internalServerError, "InternalError", "the security log failed; see the service's journal")
        }
    }
}
