import CMKKeyVaultAPI
import Foundation

/// Replays real recorded Azure Key Vault traffic (the Azure SDK test suites' recordings, see
/// `../shared/fixtures/azure-keyvault/README.md`) against a server that speaks the keys API (the
/// Azure test server, cmk-vault), request by request, and compares each answer with the recorded
/// one: status, JSON member names and types, the values that do not depend on the key material or
/// the clock, and the headers Azure sends. One implementation for every target, with one list of
/// what is not replayed (``unsupported(method:segments:requestBody:)``).
public enum RecordingReplay {
    /// `AKV_RECORDINGS_DIR`, or the shared folder next to the checkout.
    public static let directory: String = {
        if let override = ProcessInfo.processInfo.environment["AKV_RECORDINGS_DIR"] { return override }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // the package root
        return url.appendingPathComponent("../shared/fixtures/azure-keyvault/recordings").standardized.path
    }()

    /// Whether the recordings are the shared ones (the totals a replay must reach hold only for them).
    public static var isSharedDirectory: Bool { ProcessInfo.processInfo.environment["AKV_RECORDINGS_DIR"] == nil }

    /// The recordings' file names, sorted.
    public static func recordings() throws -> [String] {
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw TestServerError("no recordings at \(directory): set AKV_RECORDINGS_DIR to the folder of Azure SDK test-proxy recordings")
        }
        return files.filter { $0.hasSuffix(".json") }.sorted()
    }

    /// One recording's `Entries`.
    public static func entries(of file: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file)"))
        guard let recording = try JSONSerialization.jsonObject(with: data) as? [String: Any], let entries = recording["Entries"] as? [[String: Any]] else {
            throw TestServerError("\(file) is not a test-proxy recording with Entries")
        }
        return entries
    }

    /// Exchanges no target replays: operations the keys API does not offer (import, backup and
    /// restore, EC keys, release policies). A key whose history has one is
    /// skipped from then on.
    public static func unsupported(method: String, segments: [String], requestBody: [String: Any]?) -> Bool {
        (method == "PUT" && segments.last != "rotationpolicy") || ["backup", "restore", "release"].contains(where: { segments.contains($0) })
            || (segments.last == "create" && requestBody.map { !["RSA", "RSA-HSM"].contains($0["kty"] as? String ?? "") || $0["release_policy"] != nil } == true)
    }

    /// The kinds (`METHOD operation status`) the shared recordings hold that every target must have compared.
    public static let requiredKinds: Set<String> = [
        "POST create 200", "POST create 401", "POST rotate 200", "GET key 200", "GET key 404", "PATCH key 200", "DELETE key 200",
        "GET deletedkeys 200", "POST recover 200", "DELETE deletedkeys 204", "GET versions 200", "POST wrapkey 200",
        "POST unwrapkey 200", "POST encrypt 200", "POST decrypt 200", "GET key 401", "PUT rotationpolicy 200", "GET rotationpolicy 200",
    ]

    /// A request as the target is to receive it.
    public struct Request {
        public var method: String
        /// Absolute, on the target.
        public var url: String
        public var query: String?
        public var json: [String: Any]?
        /// The bearer token; nil for the recorded challenge requests.
        public var token: String?
        public var headers: [(String, String)]
    }

    /// The target's answer.
    public struct Reply {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: Data

        public init(status: Int, headers: [(name: String, value: String)], body: Data) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        /// The first value of a header, by case-insensitive name.
        public func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    /// Where the replay goes.
    public struct Target {
        /// `https://host:port`, as the target's key ids begin.
        public var vaultURL: String
        /// The `resource` the target's 401 challenge names (Azure's is `https://vault.azure.net`).
        public var challengeResource: String
        /// Response headers (lowercase) the target is known not to send as Azure does; every other
        /// recorded header must be there, and the fixed ones with the recorded value.
        public var headersNotCompared: Set<String>
        public var send: (Request) async throws -> Reply

        public init(vaultURL: String, challengeResource: String, headersNotCompared: Set<String> = [],
                    send: @escaping (Request) async throws -> Reply) {
            self.vaultURL = vaultURL
            self.challengeResource = challengeResource
            self.headersNotCompared = headersNotCompared
            self.send = send
        }
    }

    /// The counts of one or more replays and what did not match.
    public struct Report {
        public var compared = 0
        public var skipped = 0
        public var replicationLag = 0
        public var kinds: Set<String> = []
        public var mismatches: [String] = []

        public init() {}

        public mutating func merge(_ other: Report) {
            compared += other.compared
            skipped += other.skipped
            replicationLag += other.replicationLag
            kinds.formUnion(other.kinds)
            mismatches += other.mismatches
        }

        /// The line a replay prints.
        public func summary(_ target: String) -> String {
            "replayed recordings against \(target): \(compared) exchanges compared, \(replicationLag) replication-lag 404s, \(skipped) unsupported skipped"
        }
    }

    /// Replays every recording, each against a fresh target from `fresh` (called with the file
    /// name; it returns the target and a token for it, and tears the target down when `body` ends).
    public static func replayAll(
        _ fresh: (String, (Target, String) async throws -> Report) async throws -> Report
    ) async throws -> Report {
        var totals = Report()
        for file in try recordings() {
            let entries = try entries(of: file)
            let report = try await fresh(file) { target, token in
                var replayer = RecordingReplayer(target: target, file: file)
                return try await replayer.replay(entries, token: token)
            }
            totals.merge(report)
        }
        return totals
    }
}

/// Replays one recording file.
public struct RecordingReplayer {
    let target: RecordingReplay.Target
    let file: String
    var report = RecordingReplay.Report()
    /// Keys whose history uses operations the emulator does not offer (import, backup/restore,
    /// rotation policies, EC keys, release policies); their later entries are skipped too.
    var skippedKeys: Set<String> = []
    var versions: [String: String] = [:]
    var lastProtected: String?
    var lastNextLink: String?

    /// Response headers every Azure answer carries that the emulator must send as well.
    static let ignoredHeaders: Set<String> = ["date", "content-length", "x-ms-keyvault-rbac-assignment-id", "connection"]

    public init(target: RecordingReplay.Target, file: String) {
        self.target = target
        self.file = file
    }

    /// Replays `entries` (a recording's `Entries`) with `token` for the requests that had one.
    public mutating func replay(_ entries: [[String: Any]], token: String) async throws -> RecordingReplay.Report {
        for (index, entry) in entries.enumerated() {
            try await replay(entry, index: index, token: token)
        }
        return report
    }

    private mutating func replay(_ entry: [String: Any], index: Int, token: String) async throws {
        let method = entry["RequestMethod"] as? String ?? ""
        let components = URLComponents(string: entry["RequestUri"] as? String ?? "")
        let path = components?.percentEncodedPath ?? ""
        let segments = path.split(separator: "/").map(String.init)
        let requestBody = entry["RequestBody"] as? [String: Any]
        let name = segments.count > 1 ? segments[1] : ""
        if RecordingReplay.unsupported(method: method, segments: segments, requestBody: requestBody) || skippedKeys.contains(name) {
            skippedKeys.insert(name)
            report.skipped += 1
            return
        }
        let operation = segments.count >= 4 ? segments[3] : (segments.count == 3 ? segments[2] : "")
        let recordedStatus = entry["StatusCode"] as? Int ?? 0

        // The request as the emulator needs it: its versions, our ciphertexts, our nextLink.
        var url = target.vaultURL + segments.enumerated().map { index, segment in
            index == 2 ? (versions[segment] ?? segment) : segment
        }.reduce("") { $0 + "/" + $1 } + (path.hasSuffix("/") ? "/" : "")
        var query = components?.percentEncodedQuery
        if query?.contains("$skiptoken") == true, let link = lastNextLink {
            url = link
            query = nil
        }
        var body = requestBody
        if ["unwrapkey", "decrypt"].contains(operation), let protected = lastProtected { body?["value"] = protected }
        let requestHeaders = (entry["RequestHeaders"] as? [String: String] ?? [:]).filter { $0.key.lowercased() == "x-ms-client-request-id" }
        let reply = try await target.send(RecordingReplay.Request(
            method: method, url: url, query: query, json: body, token: recordedStatus == 401 ? nil : token,
            headers: requestHeaders.map { ($0.key, $0.value) }))

        let kind = "\(method) \(kindName(segments)) \(recordedStatus)"
        let context = "\(file) #\(index) \(method) \(path)"
        if recordedStatus == 404, reply.status == 200, method == "GET" {
            // Azure's soft delete and recovery take a moment to replicate; the SDKs poll through
            // 404s. The emulator is consistent at once.
            report.replicationLag += 1
            return
        }
        report.compared += 1
        report.kinds.insert(kind)
        guard reply.status == recordedStatus else {
            report.mismatches.append("\(context): status \(reply.status), recorded \(recordedStatus): \(String(decoding: reply.body, as: UTF8.self).prefix(300))")
            return
        }
        compareHeaders(entry["ResponseHeaders"] as? [String: String] ?? [:], reply, context: context)
        let recordedBody = entry["ResponseBody"]
        if recordedBody == nil || recordedBody is NSNull {
            if !reply.body.isEmpty { report.mismatches.append("\(context): body present, recorded none") }
            return
        }
        let served = (try? JSONSerialization.jsonObject(with: reply.body)) ?? NSNull()
        learn(from: recordedBody as? [String: Any], served as? [String: Any], operation: operation)
        compare(recordedBody as Any, served, at: "", context: context, operation: operation)
    }

    private func kindName(_ segments: [String]) -> String {
        switch (segments.first, segments.count) {
        case ("deletedkeys", 3): segments[2]
        case ("deletedkeys", _): "deletedkeys"
        case (_, 3) where ["create", "rotate", "versions", "rotationpolicy"].contains(segments[2]): segments[2]
        case (_, 4): segments[3]
        default: "key"
        }
    }

    /// Version mapping (recorded → emulator) from kids, ciphertexts and the last nextLink.
    private mutating func learn(from recorded: [String: Any]?, _ served: [String: Any]?, operation: String) {
        if let recordedKid = (recorded?["key"] as? [String: Any])?["kid"] as? String,
            let servedKid = (served?["key"] as? [String: Any])?["kid"] as? String
        {
            versions[String(recordedKid.split(separator: "/").last ?? "")] = String(servedKid.split(separator: "/").last ?? "")
        }
        if ["wrapkey", "encrypt"].contains(operation) { lastProtected = served?["value"] as? String }
        if served?.keys.contains("nextLink") == true { lastNextLink = served?["nextLink"] as? String }
    }

    private mutating func compareHeaders(_ recorded: [String: String], _ served: RecordingReplay.Reply, context: String) {
        for (name, value) in recorded where !Self.ignoredHeaders.contains(name.lowercased()) && !target.headersNotCompared.contains(name.lowercased()) {
            guard let mine = served.header(name) else {
                report.mismatches.append("\(context): header \(name) missing")
                continue
            }
            switch name.lowercased() {
            case "content-type", "cache-control", "pragma", "expires", "x-content-type-options", "strict-transport-security":
                if mine != value { report.mismatches.append("\(context): header \(name) is '\(mine)', recorded '\(value)'") }
            case "www-authenticate":
                // The recording names Azure's authority and resource; the target its own.
                let form = #"^Bearer authorization="https://[^"]+/[0-9a-f-]{36}", resource="RESOURCE"$"#
                let recordedForm = form.replacingOccurrences(of: "RESOURCE", with: "https://vault\\.azure\\.net")
                let servedForm = form.replacingOccurrences(of: "RESOURCE", with: NSRegularExpression.escapedPattern(for: target.challengeResource))
                if mine.range(of: servedForm, options: .regularExpression) == nil || value.range(of: recordedForm, options: .regularExpression) == nil {
                    report.mismatches.append("\(context): WWW-Authenticate '\(mine)' does not have the recorded form '\(value)'")
                }
            default: break
            }
        }
    }

    /// Compares a recorded JSON value with the emulator's, member by member.
    private mutating func compare(_ recorded: Any, _ served: Any, at path: String, context: String, operation: String) {
        let here = "\(context) at \(path.isEmpty ? "/" : path)"
        switch (recorded, served) {
        case (let lhs as [String: Any], let rhs as [String: Any]):
            for key in Set(lhs.keys).union(rhs.keys).sorted() {
                switch (lhs[key], rhs[key]) {
                case (nil, _?) where key == "key_size" && path.hasSuffix("attributes"):
                    continue  // the newer service sends key_size; the 2025 Python recordings predate it
                case (nil, _?): report.mismatches.append("\(here): member \(key) not in the recording")
                case (_?, nil): report.mismatches.append("\(here): member \(key) missing")
                case (let l?, let r?): compare(l, r, at: "\(path)/\(key)", context: context, operation: operation)
                case (nil, nil): continue
                }
            }
            if let deleted = lhs["deletedDate"] as? Int, let purge = lhs["scheduledPurgeDate"] as? Int,
                let myDeleted = rhs["deletedDate"] as? Int, let myPurge = rhs["scheduledPurgeDate"] as? Int, purge - deleted != myPurge - myDeleted
            {
                report.mismatches.append("\(here): retention \(myPurge - myDeleted) s, recorded \(purge - deleted) s")
            }
        case (let lhs as [Any], let rhs as [Any]):
            if path.hasSuffix("/value") {  // paged items: compare the first item's shape
                if lhs.count != rhs.count { report.mismatches.append("\(here): \(rhs.count) items, recorded \(lhs.count)") }
                if let l = lhs.first, let r = rhs.first { compare(l, r, at: "\(path)[0]", context: context, operation: operation) }
            } else if !Self.jsonEqual(lhs, rhs) {
                report.mismatches.append("\(here): \(rhs), recorded \(lhs)")
            }
        case (is NSNull, is NSNull): break
        default:
            compareScalar(recorded, served, key: String(path.split(separator: "/").last ?? ""), here: here, operation: operation)
        }
    }

    /// Equality of two JSON values, by their canonical serialization.
    static func jsonEqual(_ lhs: Any, _ rhs: Any) -> Bool {
        func canonical(_ value: Any) -> Data? { try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .fragmentsAllowed]) }
        guard let left = canonical(lhs), let right = canonical(rhs) else { return false }
        return left == right
    }

    private mutating func compareScalar(_ recorded: Any, _ served: Any, key: String, here: String, operation: String) {
        func mismatch(_ text: String) { report.mismatches.append("\(here): \(text)") }
        let typeOf: (Any) -> String = { value in
            switch value {
            case is NSNull: "null"
            case is NSNumber: "number"  // booleans too: Foundation on Linux does not tell them apart
            case is String: "string"
            default: "\(type(of: value))"
            }
        }
        guard typeOf(recorded) == typeOf(served) else { return mismatch("\(typeOf(served)) \(served), recorded \(typeOf(recorded)) \(recorded)") }
        switch key {
        case "created", "updated", "deletedDate", "scheduledPurgeDate", "nextLink":
            break
        case "id" where recorded as? String == "Sanitized":
            // A rotation policy's id, sanitized in the JS recordings: `{vault}/keys/{name}/rotationpolicy`.
            let servedURL = served as? String ?? ""
            if !servedURL.hasPrefix(target.vaultURL + "/keys/") || !servedURL.hasSuffix("/rotationpolicy") { mismatch("\(servedURL), recorded a rotation policy id") }
        case "kid", "recoveryId":
            let recordedPath = URLComponents(string: recorded as? String ?? "")?.path ?? ""
            let servedURL = served as? String ?? ""
            let servedPath = URLComponents(string: servedURL)?.path ?? ""
            let mapped = recordedPath.split(separator: "/").map { versions[String($0)] ?? String($0) }.joined(separator: "/")
            if !servedURL.hasPrefix(target.vaultURL) || "/" + mapped != servedPath && !recordedPath.isEmpty {
                mismatch("\(servedURL), recorded \(recorded as? String ?? "")")
            }
        case "n":
            if KeyVaultBase64URL.decode(recorded as? String ?? "")?.count != KeyVaultBase64URL.decode(served as? String ?? "")?.count { mismatch("modulus size differs") }
        case "value" where ["wrapkey", "encrypt"].contains(operation):
            if KeyVaultBase64URL.decode(recorded as? String ?? "")?.count != KeyVaultBase64URL.decode(served as? String ?? "")?.count { mismatch("ciphertext size differs") }
        case "message" where (recorded as? String ?? "").hasPrefix("AKV10000"):
            if !(served as? String ?? "").hasPrefix("AKV10000: Request is missing a Bearer") { mismatch("\(served), recorded \(recorded)") }
        default:
            if !Self.jsonEqual(recorded, served) { mismatch("\(served), recorded \(recorded)") }
        }
    }
}
