import CMKIdentity
import Foundation
import Testing

/// Many writers on one store, each with its own connection pool as separate processes would have.
@Suite struct ConcurrencyTests {
    /// Runs `body(0..<count)` at once, each on its own task: "added", or the error's code.
    func race(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) async -> [String] {
        await withTaskGroup(of: String.self) { group in
            for index in 0..<count {
                group.addTask {
                    do {
                        try body(index)
                        return "added"
                    } catch let error as IdentityError {
                        return error.codeName
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
    }

    @Test func racingWritersNeverMakeAnEleventhAdministrator() async throws {
        let directory = try StateDirectory()
        _ = try directory.store()
        let path = directory.path
        let outcomes = await race(40) { index in _ = try IdentityStore(stateDirectory: path).addAdministrator(name: "admin \(index)") }
        #expect(outcomes.filter { $0 == "added" }.count == 10)
        #expect(outcomes.filter { $0 == "identity.administrator-limit" }.count == 30, "\(outcomes)")
        #expect(try directory.store().administrators().count == 10)
    }

    @Test func racingKeysWithOneNameMakeOneLiveKey() async throws {
        let directory = try StateDirectory()
        let first = try directory.store()
        let path = directory.path
        // Four names, eight writers each.
        let outcomes = await race(32) { index in
            _ = try IdentityStore(stateDirectory: path).addServicePrincipalCredential(displayName: "key \(index % 4)")
        }
        #expect(outcomes.filter { $0 == "added" }.count == 4, "\(outcomes)")
        #expect(outcomes.filter { $0 == "identity.duplicate-name" }.count == 28)
        #expect(Set(try first.servicePrincipalCredentials().map(\.displayName)) == ["key 0", "key 1", "key 2", "key 3"])
        // One tenant, whoever opened first.
        #expect(try directory.store().tenant == first.tenant)
    }

    @Test func storesOpenedAtOnceAgreeOnOneTenantAndOneSigningKey() async throws {
        let directory = try StateDirectory()
        let path = directory.path
        let seen = await withTaskGroup(of: String.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    do {
                        let store = try IdentityStore(stateDirectory: path), keys = try TokenSigningKeys(stateDirectory: path)
                        return store.tenant.tenantID + " " + keys.keys.map(\.kid).joined()
                    } catch {
                        return "failed: \(error)"
                    }
                }
            }
            return await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(seen.count == 1 && !seen.contains { $0.hasPrefix("failed") }, "\(seen)")
    }
}
