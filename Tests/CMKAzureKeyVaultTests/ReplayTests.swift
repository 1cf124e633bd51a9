@testable import CMKAzureKeyVault
import CMKCore
import CMKEnvelope
import Foundation
import Testing

/// Every response in the recorded Azure Key Vault traffic goes through the provider's real
/// decoding and pipeline, and the derived snapshot, public key, unwrap result or error must be
/// what the recording says (read independently with `JSONSerialization`).
@Suite("Replay of recorded Azure Key Vault traffic")
struct ReplayTests {
    /// The response kinds the recordings must contain between them.
    static let requiredKinds: Set<String> = [
        "401 challenge", "200 key bundle", "200 deleted key bundle", "404 key", "404 deleted key", "200 versions page",
        "200 versions page (next)", "200 unwrap", "200 wrap", "400", "409", "204 purge",
    ]

    @Test("every recorded response decodes to the right snapshot, key, result or error")
    func replayEveryResponse() async throws {
        let recordings = try Recording.all()
        var kinds: [String: Int] = [:]
        for recording in recordings {
            for entry in recording.entries {
                let kind = try await check(entry, in: recording)
                kinds[kind, default: 0] += 1
            }
        }
        let missing = Self.requiredKinds.subtracting(kinds.keys)
        #expect(missing.isEmpty, "response kinds not found in \(Recording.folder().path): \(missing.sorted())")
        #expect(kinds["unhandled", default: 0] == 0, "recorded responses the provider cannot classify")
    }

    /// Checks one entry; returns its kind.
    func check(_ entry: Recording.Entry, in recording: Recording) async throws -> String {
        let label = "\(recording.name)#\(entry.index) \(entry.method) \(entry.url.path) \(entry.status)"
        let key = try KeyReference(entry.keyName == "restore" ? "restored" : entry.keyName)
        let transport = ScriptedTransport()
        switch (entry.route, entry.status) {
        case (_, 401):
            try await checkChallenge(entry, in: recording, label: label)
            return "401 challenge"

        case ("create-key", 200):
            transport.enqueue("get-key", Self.keyNotFound(key))
            transport.enqueue("create-key", entry.response)
            let version = try await Fixtures.vault(transport).createKey(key, size: .bits2048)
            #expect(version == Self.expectedVersion(entry.object), "\(label)")
            #expect(transport.routes() == ["get-key", "create-key"], "\(label): create checks for an existing key first")
            return "200 key bundle"
        case ("rotate-key", 200):
            transport.enqueue("rotate-key", entry.response)
            #expect(try await Fixtures.vault(transport).rotateKey(key) == Self.expectedVersion(entry.object), "\(label)")
            return "200 key bundle"
        case ("get-key", 200):
            transport.enqueue("get-key", entry.response)
            transport.enqueue("list-versions", Self.listing(of: entry.object))
            let snapshot = try await Fixtures.vault(transport).snapshot(of: key)
            #expect(snapshot == .present(KeyState(key: key, versions: [Self.expectedVersion(entry.object)])), "\(label)")
            #expect(transport.routes() == ["get-key", "list-versions"], "\(label): one snapshot is latest + versions")
            return "200 key bundle"
        case ("get-key-version", 200):
            try await checkPublicKey(entry, key: key, label: label)
            return "200 key bundle"
        case ("update-key", 200):
            transport.enqueue("update-key", entry.response)
            let expected = Self.expectedVersion(entry.object)
            let updated = try await Fixtures.vault(transport).updateVersion(key, version: expected.id, KeyVersionUpdate(enabled: expected.enabled))
            #expect(updated == expected, "\(label)")
            return "200 key bundle"
        case ("recover-key", 200):
            transport.enqueue("recover-key", entry.response)
            // Recovery completes asynchronously: the first poll may still see 404, as recorded.
            if let pending = recording.entries.first(where: { $0.index > entry.index && $0.route == "get-key" && $0.status == 404 }) {
                transport.enqueue("get-key", pending.response)
                transport.enqueue("get-deleted-key", Self.deletedNotFound(key))
            }
            transport.enqueue("get-key", entry.response)
            transport.enqueue("list-versions", Self.listing(of: entry.object))
            let state = try await Fixtures.vault(transport).recoverKey(key)
            #expect(state.versions == [Self.expectedVersion(entry.object)], "\(label)")
            return "200 key bundle"
        case ("import-key", 200), ("restore", 200):
            let vault = try Fixtures.vault(transport)
            let bundle = try vault.decode(KeyBundle.self, entry.response, entry.route)
            #expect(try vault.version(of: bundle.key.kid, bundle.attributes, key: key, operation: entry.route) == Self.expectedVersion(entry.object), "\(label)")
            return "200 key bundle"

        case ("delete-key", 200):
            transport.enqueue("delete-key", entry.response)
            let deleted = try await Fixtures.vault(transport).deleteKey(key)
            #expect(deleted == Self.expectedDeleted(entry.object, key), "\(label)")
            return "200 deleted key bundle"
        case ("get-deleted-key", 200):
            transport.enqueue("get-key", Self.keyNotFound(key))
            transport.enqueue("get-deleted-key", entry.response)
            let snapshot = try await Fixtures.vault(transport).snapshot(of: key)
            #expect(snapshot == .deleted(Self.expectedDeleted(entry.object, key)), "\(label): a 404 key with a deleted bundle is a pull")
            return "200 deleted key bundle"
        case ("get-deleted-key", 404):
            transport.enqueue("get-key", Self.keyNotFound(key))
            transport.enqueue("get-deleted-key", entry.response)
            #expect(try await Fixtures.vault(transport).snapshot(of: key) == .missing(key), "\(label)")
            return "404 deleted key"
        case ("get-key", 404):
            try await checkKeyNotFound(entry, in: recording, key: key, label: label)
            return "404 key"

        case ("list-versions", 200):
            if entry.url.query?.contains("skiptoken") == true { return "200 versions page (next)" }
            try await checkPagedListing(entry, in: recording, key: key, label: label)
            return "200 versions page"

        case ("wrap", 200):
            let plain = try #require(decodeBase64URL((entry.requestBody as? [String: Any])?["value"] as? String ?? ""))
            transport.enqueue("wrap", entry.response)
            let version = try #require(entry.url.path.split(separator: "/").dropLast().last.map(String.init))
            let wrapped = try await Fixtures.vault(transport).wrap(SecretBytes(copying: plain), key: key, version: version, algorithm: .rsaOAEP256)
            #expect(wrapped == decodeBase64URL(entry.object["value"] as? String ?? ""), "\(label)")
            return "200 wrap"
        case ("unwrap", 200):
            let wrapped = try #require(decodeBase64URL((entry.requestBody as? [String: Any])?["value"] as? String ?? ""))
            transport.enqueue("unwrap", entry.response)
            let version = try #require(entry.url.path.split(separator: "/").dropLast().last.map(String.init))
            let plain = try await Fixtures.vault(transport).unwrap(wrapped, key: key, version: version, algorithm: .rsaOAEP256)
            let expected = try #require(decodeBase64URL(entry.object["value"] as? String ?? ""))
            #expect(plain == SecretBytes(copying: expected), "\(label)")
            let body = try #require(transport.requests.first?.body)
            let sent = try #require(try JSONSerialization.jsonObject(with: body) as? [String: String])
            #expect(sent["alg"] == "RSA-OAEP-256" && decodeBase64URL(sent["value"] ?? "") == wrapped, "\(label): unwrapkey body")
            return "200 unwrap"
        case ("encrypt", 200), ("decrypt", 200):
            let result = try Fixtures.vault(transport).decode(KeyOperationResult.self, entry.response, entry.route)
            #expect(Base64URL.decode(result.value) == decodeBase64URL(entry.object["value"] as? String ?? ""), "\(label)")
            return "200 \(entry.route)"

        case ("create-key", 400):
            transport.enqueue("get-key", Self.keyNotFound(key))
            transport.enqueue("create-key", entry.response)
            await Self.expectError(.invalidInput, label) { _ = try await Fixtures.vault(transport).createKey(key, size: .bits2048) }
            return "400"
        case (_, 400):
            #expect(try Fixtures.vault(transport).mapped(entry.response, entry.route).code == .invalidInput, "\(label)")
            return "400"
        case (_, 409):
            let error = try Fixtures.vault(transport).mapped(entry.response, entry.route)
            #expect(error.code == .conflict && error.reason.contains("Conflict"), "\(label): \(error)")
            return "409"
        case ("purge-key", 204):
            transport.enqueue("purge-key", entry.response)
            try await Fixtures.vault(transport).purgeKey(key)
            #expect(transport.routes() == ["purge-key"], "\(label)")
            return "204 purge"

        case ("backup", 200), ("rotation-policy", 200):
            // Not part of the provider's API; the answer must still be a JSON object.
            #expect(!entry.object.isEmpty, "\(label)")
            return "200 \(entry.route) (not used by the provider)"
        default:
            Issue.record("\(label): a response kind the replay test does not know")
            return "unhandled"
        }
    }

    // MARK: Kinds with more steps

    func checkChallenge(_ entry: Recording.Entry, in recording: Recording, label: String) async throws {
        let header = try #require(entry.headers["WWW-Authenticate"], "\(label): a 401 without WWW-Authenticate")
        let challenge = try #require(AuthenticationChallenge(header: header), "\(label): challenge does not parse")
        let tenant = try #require(header.firstMatch(of: /login\.microsoftonline\.com\/([0-9a-f-]+)/)?.1).description
        #expect(challenge.tenantID == tenant && challenge.resource == "https://vault.azure.net", "\(label): \(challenge)")
        #expect(challenge.authorization?.host == "login.microsoftonline.com", "\(label)")

        // The retried request is the next entry: the provider must answer the challenge with a
        // fresh token and resend the same request once.
        let next = try #require(recording.entries.first { $0.index == entry.index + 1 }, "\(label): no retried request follows")
        #expect(next.method == entry.method && next.url == entry.url, "\(label): the entry after a challenge repeats the request")
        let transport = ScriptedTransport()
        transport.enqueue(entry.route, entry.response)
        transport.enqueue(entry.route, next.response)
        let vault = try Fixtures.vault(transport, tenant: tenant)
        let response = try await vault.send(VaultCall(operation: entry.route, method: entry.method, path: entry.rawPath, body: entry.requestData))
        #expect(response.status == next.status, "\(label): the retried request's answer is returned")
        let authorizations = transport.requests.map { $0.header("Authorization") }
        #expect(authorizations == ["Bearer token-1", "Bearer token-2"], "\(label): the rejected token is replaced once")
        let scope = transport.tokenRequests.last.flatMap { $0.body }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        #expect(scope.contains("scope=https%3A%2F%2Fvault.azure.net%2F.default"), "\(label): token scope from the challenge's resource")
        #expect(transport.tokenRequests.last?.url.path == "/\(tenant)/oauth2/v2.0/token", "\(label): token from the challenge's tenant")

        // A vault in another tenant than the configured one is refused, not followed.
        let other = ScriptedTransport()
        other.enqueue(entry.route, entry.response)
        let foreign = try Fixtures.vault(other, tenant: "11111111-2222-3333-4444-555555555555")
        await Self.expectError(.unauthorized, "\(label) (other tenant)") {
            _ = try await foreign.send(VaultCall(operation: entry.route, method: entry.method, path: entry.rawPath))
        }
    }

    func checkPublicKey(_ entry: Recording.Entry, key: KeyReference, label: String) async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key-version", entry.response)
        let vault = try Fixtures.vault(transport)
        let jwk = entry.object["key"] as? [String: Any] ?? [:]
        let version = try #require(entry.url.path.split(separator: "/").last.map(String.init))
        guard (jwk["kty"] as? String)?.hasPrefix("RSA") == true else {
            await Self.expectError(.unsupported, "\(label) (non-RSA key)") { _ = try await vault.publicKey(of: key, version: version) }
            return
        }
        let material = try await vault.publicKey(of: key, version: version)
        let n = try #require(decodeBase64URL(jwk["n"] as? String ?? "")), e = try #require(decodeBase64URL(jwk["e"] as? String ?? ""))
        #expect(material == .rsa(modulus: n, exponent: e), "\(label)")
        let bits = ((entry.object["attributes"] as? [String: Any])?["key_size"] as? Int) ?? n.count * 8
        #expect(material.bitCount == bits, "\(label): \(material.bitCount) bits")
        _ = try DEKWrapping.wrap(DEKWrapping.generateDEK(), with: material)
        // A second call is served from the cache: versions are immutable.
        _ = try await vault.publicKey(of: key, version: version)
        #expect(transport.requests.count == 1, "\(label): the public key is fetched once")
    }

    func checkKeyNotFound(_ entry: Recording.Entry, in recording: Recording, key: KeyReference, label: String) async throws {
        let transport = ScriptedTransport()
        transport.enqueue("get-key", entry.response)
        // Use the recording's own deleted-key answer for this key when it has one (then this 404
        // is a pull); otherwise the key is missing.
        let deleted = recording.entries.first { $0.route == "get-deleted-key" && $0.status == 200 && $0.keyName == entry.keyName && $0.index < entry.index }
        transport.enqueue("get-deleted-key", deleted?.response ?? Self.deletedNotFound(key))
        let snapshot = try await Fixtures.vault(transport).snapshot(of: key)
        if let deleted {
            #expect(snapshot == .deleted(Self.expectedDeleted(deleted.object, key)), "\(label): pulled")
        } else {
            #expect(snapshot == .missing(key), "\(label): missing")
        }
        #expect(transport.routes() == ["get-key", "get-deleted-key"], "\(label): the deleted-key lookup only follows a 404")
        let message = try #require((entry.object["error"] as? [String: Any])?["message"] as? String)
        let error = try Fixtures.vault(transport).mapped(entry.response, "get-key")
        #expect(error.code == .notFound && error.reason.contains(String(message.prefix(40))), "\(label): \(error)")
    }

    func checkPagedListing(_ entry: Recording.Entry, in recording: Recording, key: KeyReference, label: String) async throws {
        var pages = [entry]
        while let link = (pages.last!.object["nextLink"] as? String), let next = recording.entries.first(where: {
            $0.index > pages.last!.index && $0.route == "list-versions" && $0.url.query == URLComponents(string: link)?.query
        }) {
            pages.append(next)
        }
        let items = pages.flatMap { $0.object["value"] as? [[String: Any]] ?? [] }
        let expected = items.map { Self.expectedVersion(["key": ["kid": $0["kid"]!], "attributes": $0["attributes"]!]) }
            .sorted { $0.created < $1.created }
        // The latest version's bundle, as the recording's create answered it.
        let newest = try #require(expected.last)
        let bundle = try #require(recording.entries.first { $0.status == 200 && ($0.object["key"] as? [String: Any])?["kid"].map { "\($0)".hasSuffix(newest.id) } == true })
        let transport = ScriptedTransport()
        transport.enqueue("get-key", bundle.response)
        for page in pages { transport.enqueue("list-versions", page.response) }
        let snapshot = try await Fixtures.vault(transport).snapshot(of: key)
        #expect(snapshot == .present(KeyState(key: key, versions: expected)), "\(label)")
        #expect(pages.count > 1, "\(label): the recording is paged")
        let listed = transport.requests.filter { Route.of($0.method, $0.url.path) == "list-versions" }
        #expect(listed.count == pages.count, "\(label): every nextLink is followed")
        #expect(listed.dropFirst().allSatisfy { $0.url.host == "sanitized.vault.azure.net" && $0.url.query?.contains("$skiptoken=Sanitized") == true },
                "\(label): next pages go to the configured vault with the link's query")
    }

    // MARK: Expectations read from the recording

    static func expectedVersion(_ object: [String: Any]) -> KeyVersion {
        let kid = (object["key"] as? [String: Any])?["kid"] as? String ?? ""
        let attributes = object["attributes"] as? [String: Any] ?? [:]
        func date(_ name: String) -> Date? { (attributes[name] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) } }
        return KeyVersion(id: String(kid.split(separator: "/").last ?? ""), created: date("created") ?? .distantPast,
                          enabled: attributes["enabled"] as? Bool ?? true, notBefore: date("nbf"), expires: date("exp"))
    }

    static func expectedDeleted(_ object: [String: Any], _ key: KeyReference) -> DeletedKey {
        DeletedKey(key: key, deletedDate: Date(timeIntervalSince1970: (object["deletedDate"] as? NSNumber)?.doubleValue ?? 0),
                   scheduledPurgeDate: (object["scheduledPurgeDate"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue) })
    }

    static func listing(of bundle: [String: Any]) -> AzureHTTPResponse {
        let item: [String: Any] = ["kid": (bundle["key"] as? [String: Any])?["kid"] ?? "", "attributes": bundle["attributes"] ?? [:]]
        let data = try! JSONSerialization.data(withJSONObject: ["value": [item], "nextLink": NSNull()])
        return AzureHTTPResponse(status: 200, headers: [("Content-Type", "application/json")], body: data)
    }

    static func keyNotFound(_ key: KeyReference) -> AzureHTTPResponse {
        .json(404, #"{"error":{"code":"KeyNotFound","message":"A key with (name/id) \#(key) was not found in this key vault."}}"#)
    }

    static func deletedNotFound(_ key: KeyReference) -> AzureHTTPResponse {
        .json(404, #"{"error":{"code":"KeyNotFound","message":"Deleted Key not found: \#(key)"}}"#)
    }

    static func expectError(_ code: VaultError.Code, _ label: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            Issue.record("\(label): expected \(code), but it succeeded")
        } catch let error as VaultError {
            #expect(error.code == code, "\(label): expected \(code), got \(error)")
        } catch {
            Issue.record("\(label): expected VaultError \(code), got \(error)")
        }
    }
}
