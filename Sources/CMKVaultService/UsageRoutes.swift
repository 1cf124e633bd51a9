import CMKCore
import CMKIdentity
import CMKKeyVaultAPI
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// Version usage from the hosts (docs/vault-service.md, "Version usage from the hosts"):
///
/// | route | who | what |
/// |---|---|---|
/// | `POST /v1.0/usageReports` | platform identity | the host's latest report (counts per key version); 204 |
/// | `GET /v1.0/keyUsage?key=NAME` | service principal, administrator | each version's accounts, DEKs, hosts and stale hosts, and each host's last report |
///
/// The host of a report is the platform identity's host name, from the token: the body cannot
/// name one. A report is not a security-log record (each host reports after every pass, every
/// 15 minutes by default: the log would grow by 96 records a day per host and say nothing the
/// guard's `disabled-in-use` record does not); the journal has a debug line per report.
struct UsageRoutes: Sendable {
    let routes: VaultRoutes
    let book: any HostUsageBook
    let logger: Logger

    func register(on router: Router<VaultRequestContext>) {
        router.group("v1.0").add(middleware: BearerAuthentication(routes: routes, roles: [.platform]))
            .post("usageReports") { request, context in try await receive(request, context: context) }
        router.group("v1.0").add(middleware: BearerAuthentication(routes: routes, roles: [.servicePrincipal, .administrator]))
            .get("keyUsage") { request, _ in try keyUsage(request) }
    }

    // MARK: POST /v1.0/usageReports

    /// The body of a report (``UsageReportBody``, the type the daemon encodes), read strictly: the
    /// host comes from the token, `received` from the service's clock.
    struct ReportBody: Decodable {
        var wire: UsageReportBody

        init(from decoder: any Decoder) throws {
            do {
                wire = try UsageReportBody(from: decoder)
            } catch let unknown as UsageReportBody.UnknownField {
                throw ServiceError.badRequest(unknown.description)  // inside versions[]: StrictJSON checks only the top level and objects
            }
        }
    }

    static let bodyFields = Dictionary(uniqueKeysWithValues: UsageReportBody.fields.map { ($0, Set<String>()) })
    /// The most versions one report may name (a key has far fewer in practice).
    static let maximumVersions = 1_000
    static let maximumCount = 100_000_000

    func receive(_ request: Request, context: VaultRequestContext) async throws -> Response {
        guard let principal = context.principal else { throw ServiceError.forbidden("no caller") }
        _ = try SecurityLogRoutes.query(request, allowed: ["api-version"])  // the daemon's Azure pipeline adds api-version
        let body = try await StrictJSON.decode(ReportBody.self, from: request, context: context, allowed: Self.bodyFields).wire
        let host: String
        do {
            guard let identity = try routes.store.platformIdentities().first(where: { $0.clientID == principal.clientID }) else {
                throw ServiceError.forbidden("the platform identity \(principal.clientID) was removed; it may not report")
            }
            host = identity.name
        } catch let error as IdentityError {
            throw VaultRoutes.answer(error)
        }
        let report = try Self.report(body, host: host, received: Date())
        do {
            try book.store(report)
        } catch {
            logger.error("A host usage report could not be stored; the host's previous report stays.", metadata: [
                "cmk_host": .string(host), "cmk_error": .string("\(error)"),
            ])
            throw ServiceError(.serviceUnavailable, "ServiceUnavailable", "the report could not be stored (see the service's journal); report again at the next pass")
        }
        logger.debug("A host usage report was received.", metadata: [
            "cmk_host": .string(host), "cmk_key": .string(report.key), "cmk_sync_id": .string(report.syncID),
            "cmk_versions": .string(String(report.versions.count)),
        ])
        return Response(status: .noContent, headers: [.cacheControl: "no-store"])
    }

    /// The report a body describes, or a 400 naming the field and what is accepted.
    static func report(_ body: UsageReportBody, host: String, received: Date) throws -> HostUsageReport {
        guard isKeyName(body.key) else { throw ServiceError.badRequest("key must be a key name of 1-127 letters, digits and '-'") }
        guard (1...64).contains(body.syncId.utf8.count), body.syncId.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ServiceError.badRequest("syncId must be 1-64 visible ASCII characters (the pass's CMK_SYNC_ID)")
        }
        guard let finished = GraphDate.parse(body.finished) else {
            throw ServiceError.badRequest("finished must be an ISO 8601 date and time such as 2026-12-05T07:10:00Z")
        }
        guard body.passInterval.isFinite, (1...604_800).contains(body.passInterval) else {
            throw ServiceError.badRequest("passInterval must be the host's sync.interval in seconds, 1 to 604800")
        }
        guard (0...maximumCount).contains(body.accounts) else { throw ServiceError.badRequest("accounts must be 0 to \(maximumCount)") }
        guard body.versions.count <= maximumVersions else { throw ServiceError.badRequest("versions may name at most \(maximumVersions) key versions") }
        var seen = Set<String>()
        for count in body.versions {
            guard isVersionID(count.version) else { throw ServiceError.badRequest("versions[].version must be a key version id of 1-64 letters and digits") }
            guard seen.insert(count.version.lowercased()).inserted else { throw ServiceError.badRequest("versions[] names a version more than once") }
            guard (0...maximumCount).contains(count.accounts), (0...maximumCount).contains(count.deks) else {
                throw ServiceError.badRequest("versions[].accounts and versions[].deks must be 0 to \(maximumCount)")
            }
        }
        return HostUsageReport(host: host, key: body.key.lowercased(), syncID: body.syncId, finished: finished, passInterval: body.passInterval,
                               accounts: body.accounts, versions: body.versions,
                               received: received)
    }

    static func isKeyName(_ text: String) -> Bool {
        (1...127).contains(text.utf8.count) && text.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }
    }

    static func isVersionID(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy(isLetterOrDigit)
    }

    static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    // MARK: GET /v1.0/keyUsage

    struct KeyUsage: Encodable, Sendable {
        struct Version: Encodable, Sendable {
            var version: String
            var accounts: Int
            var deks: Int
            var hosts: [String]
            var staleHosts: [String]
            var inUse: Bool
        }
        struct Host: Encodable, Sendable {
            var host: String
            /// When the service received the host's latest report (staleness is judged on it).
            var received: Date
            /// When that pass finished, by the host's clock.
            var finished: Date
            var syncId: String
            var passInterval: Double
            var stale: Bool
            var accounts: Int
        }
        var key: String
        var time: Date
        var versions: [Version]
        var hosts: [Host]
    }

    func keyUsage(_ request: Request) throws -> JSONResponse<KeyUsage> {
        let query = try SecurityLogRoutes.query(request, allowed: ["key"])
        guard let key = query["key"] else { throw ServiceError.badRequest("the query parameter 'key' is required: the key's name") }
        guard Self.isKeyName(key) else { throw ServiceError.badRequest("the query parameter 'key' must be a key name of 1-127 letters, digits and '-'") }
        let now = Date()
        let usage: [KeyVersionUsage], reports: [HostUsageReport]
        do {
            usage = try book.usage(of: key, at: now)
            reports = try book.reports().filter { $0.key == key.lowercased() }
        } catch {
            logger.error("The host usage reports cannot be read.", metadata: ["cmk_error": .string("\(error)")])
            throw ServiceError(.internalServerError, "InternalError", "the host usage reports cannot be read; see the service's journal")
        }
        return JSONResponse(value: KeyUsage(
            key: key.lowercased(), time: now,
            versions: usage.map { .init(version: $0.version, accounts: $0.accounts, deks: $0.deks, hosts: $0.hosts, staleHosts: $0.staleHosts, inUse: $0.inUse) },
            hosts: reports.sorted { $0.host < $1.host }.map {
                .init(host: $0.host, received: $0.received, finished: $0.finished, syncId: $0.syncID, passInterval: $0.passInterval,
                      stale: $0.isStale(at: now), accounts: $0.accounts)
            }))
    }
}

/// The guard on disabling a version in use, through the keys API: a `PATCH /keys/{name}/{version}`
/// that disables the version (`attributes.enabled: false`) or sets its `exp` to now or earlier
/// while hosts report using it is carried out exactly as Azure would, but recorded as
/// `disabled-in-use` (hosts and counts in the details), journaled as a warning and announced as
/// ``KeyEvent/Kind/versionDisabledInUse``.
struct InUseGuard: Sendable {
    let book: any HostUsageBook
    let api: KeyVaultAPI
    let logger: Logger

    /// A PATCH that takes a version out of use while hosts use it.
    struct Finding: Sendable {
        var key: String
        var version: String
        /// `disabled` or `expired`.
        var change: String
        var usage: KeyVersionUsage
        /// Accounts per host, `host=N`, sorted by host.
        var hostAccounts: [String]
    }

    /// The finding for a `key-updated` request, or nil when it does not disable or expire a
    /// version that some host uses (or the usage cannot be read: the journal says so).
    func check(segments: [String], body: Data, now: Date = Date()) -> Finding? {
        guard segments.first == "keys", segments.count >= 2, segments.count <= 3,
              let object = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any],
              let attributes = object["attributes"] as? [String: Any] else { return nil }
        let change: String
        if let enabled = attributes["enabled"] as? Bool, !enabled {
            change = "disabled"
        } else if let exp = attributes["exp"] as? NSNumber, !(exp is Bool), exp.doubleValue <= now.timeIntervalSince1970 {
            change = "expired"
        } else {
            return nil
        }
        let key = segments[1].removingPercentEncoding ?? segments[1]
        var version = segments.count == 3 ? (segments[2].removingPercentEncoding ?? segments[2]) : ""
        if version.isEmpty {
            // `PATCH /keys/{name}/` updates the current version: ask the vault which it is.
            guard let current = currentVersion(of: key) else { return nil }
            version = current
        }
        do {
            guard let usage = try book.usage(of: key, at: now).first(where: { $0.version.lowercased() == version.lowercased() }), usage.inUse else { return nil }
            let perHost = try book.reports().filter { $0.key == key.lowercased() }.compactMap { report -> String? in
                guard let count = report.versions.first(where: { $0.version.lowercased() == version.lowercased() }), count.accounts > 0 || count.deks > 0 else { return nil }
                return "\(report.host)=\(count.accounts)"
            }.sorted()
            return Finding(key: key, version: version, change: change, usage: usage, hostAccounts: perHost)
        } catch {
            logger.error("The host usage reports cannot be read; a key update is recorded without its usage.", metadata: ["cmk_error": .string("\(error)")])
            return nil
        }
    }

    func currentVersion(of key: String) -> String? {
        let answer = api.handle(ServerRequest(method: "GET", uri: "/keys/\(AzureSegment.encode(key))/?api-version=7.6", headers: [], body: Data()))
        guard answer.status == 200, let bundle = (try? JSONSerialization.jsonObject(with: answer.body)) as? [String: Any],
              let kid = (bundle["key"] as? [String: Any])?["kid"] as? String, let url = URL(string: kid) else { return nil }
        let parts = url.path.split(separator: "/")
        return parts.count >= 3 ? String(parts[2]) : nil
    }

    /// The record the request gets instead of `key-updated`.
    func event(_ recorded: ServiceEvent, _ finding: Finding) -> ServiceEvent {
        var event = recorded
        event.operation = "disabled-in-use"
        event.details["version"] = String(finding.version.prefix(64))
        event.details["change"] = finding.change
        event.details["hosts"] = finding.usage.hosts.joined(separator: ",")
        event.details["hostAccounts"] = finding.hostAccounts.joined(separator: ",")
        event.details["accounts"] = String(finding.usage.accounts)
        event.details["deks"] = String(finding.usage.deks)
        if !finding.usage.staleHosts.isEmpty { event.details["staleHosts"] = finding.usage.staleHosts.joined(separator: ",") }
        return event
    }

    /// After the vault made the change: the journal's warning and the event.
    func done(_ finding: Finding, principal: Principal, responseBody: Data, keyEvents: (any KeyEventSink)?) {
        logger.warning("A key version that hosts still use was disabled or expired through the keys API.", metadata: [
            "message_id": .string(VaultMessageID.versionDisabledInUse), "cmk_key": .string(finding.key), "cmk_key_version": .string(finding.version),
            "cmk_change": .string(finding.change), "cmk_hosts": .string(finding.usage.hosts.joined(separator: ",")),
            "cmk_accounts": .string(String(finding.usage.accounts)), "cmk_deks": .string(String(finding.usage.deks)),
            "cmk_actor": .string(principal.clientID),
        ])
        let attributes = ((try? JSONSerialization.jsonObject(with: responseBody)) as? [String: Any])?["attributes"] as? [String: Any]
        keyEvents?.publish(KeyEvent(kind: .versionDisabledInUse, keyName: finding.key, version: finding.version,
                                    notBefore: (attributes?["nbf"] as? NSNumber)?.intValue, expires: (attributes?["exp"] as? NSNumber)?.intValue))
    }
}

/// One percent-encoded path segment (key names are letters, digits and '-').
enum AzureSegment {
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-"))) ?? text
    }
}
