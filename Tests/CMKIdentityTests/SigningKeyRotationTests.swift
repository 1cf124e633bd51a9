import CMKIdentity
import Foundation
import Synchronization
import Testing

/// `TokenSigningKeys.rotate` (what `cmkctl vault rotate-signing-key` runs) and a running
/// service's instance picking the new file up without a restart.
@Suite struct SigningKeyRotationTests {
    let audience = "https://vault.azure.net"
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    struct Setup {
        let directory: StateDirectory
        let service: TokenService
        let principal: Principal
        let firstKid: String
    }

    /// A store, a token service as the running service holds it, and an authenticated principal.
    func setup(onReloadFailure: (@Sendable (IdentityError) -> Void)? = nil) throws -> Setup {
        let directory = try StateDirectory()
        let store = try directory.store()
        let keys = try TokenSigningKeys(stateDirectory: directory.path, now: now, onReloadFailure: onReloadFailure)
        let service = TokenService(store: store, keys: keys, issuerBase: "https://vault.test")
        let key = try store.addServicePrincipalCredential(displayName: "app", endDateTime: now + 30 * day, at: now)
        let principal = try #require(try store.authenticate(clientID: store.tenant.servicePrincipalClientID, secret: key.secretText!, at: now).principal)
        return Setup(directory: directory, service: service, principal: principal, firstKid: keys.signingKey(at: now).kid)
    }

    /// A planned rotation: the running instance publishes the new key at once, keeps signing with
    /// the old one until the activation, then signs with the new one; the old key's tokens verify
    /// until they expire, and the next rotation removes it from the file.
    @Test func aPlannedRotationIsPublishedBeforeItSignsWithoutARestart() throws {
        let s = try setup()
        let before = try s.service.issue(for: s.principal, audience: audience, at: now)
        let rotation = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, activateIn: day, now: now + 10)
        #expect(rotation.removed.isEmpty)
        #expect(rotation.keys.map(\.kid) == [s.firstKid, rotation.added.kid])
        #expect(rotation.added.activates == now + 10 + day)

        // The same instance, as a running service holds it: the new key is published, not yet signing.
        #expect(s.service.keys.keySet(at: now + 20).keys.map(\.kid) == [s.firstKid, rotation.added.kid])
        #expect(s.service.keys.signingKey(at: now + 20).kid == s.firstKid)
        let switchover = now + 10 + day
        #expect(s.service.keys.signingKey(at: switchover).kid == rotation.added.kid)
        let after = try s.service.issue(for: s.principal, audience: audience, at: switchover)
        #expect(try s.service.verify(after.token, audience: audience, at: switchover + 1).token != nil)
        #expect(try s.service.verify(before.token, audience: audience, at: now + 30).token != nil)

        // A second rotation while the first key is pending is refused; after the switchover plus a
        // token lifetime and the leeway, it removes the retired key.
        #expect(identityError { _ = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, now: now + 60) }?.code == .rotationPending)
        let later = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, activateIn: 0, now: switchover + 3661)
        #expect(later.removed == [s.firstKid])
        #expect(later.keys.map(\.kid) == [rotation.added.kid, later.added.kid])
        #expect(s.service.keys.keys.map(\.kid) == [rotation.added.kid, later.added.kid])
    }

    /// `--retire-now`: the new key signs at once and every token signed before is refused at the
    /// next verification by the running instance.
    @Test func retiringEveryOtherKeyRefusesEarlierTokensAtOnce() throws {
        let s = try setup()
        let before = try s.service.issue(for: s.principal, audience: audience, at: now)
        #expect(try s.service.verify(before.token, audience: audience, at: now + 1).token != nil)
        _ = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, activateIn: day, now: now + 2)
        let rotation = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, retireOthers: true, now: now + 3)
        #expect(rotation.keys.map(\.kid) == [rotation.added.kid])
        #expect(rotation.removed.count == 2)
        #expect(rotation.removed.contains(s.firstKid))
        #expect(try s.service.verify(before.token, audience: audience, at: now + 4) == .refused(.unknownKey))
        let fresh = try s.service.issue(for: s.principal, audience: audience, at: now + 4)
        #expect(try s.service.verify(fresh.token, audience: audience, at: now + 5).token != nil)
        #expect(try TokenSigningKeys.read(stateDirectory: s.directory.path)?.map(\.kid) == [rotation.added.kid])
    }

    /// A replacement the instance cannot read leaves the loaded keys in use and is reported once;
    /// a good file is picked up again.
    @Test func anUnreadableReplacementKeepsTheLoadedKeysAndIsReportedOnce() throws {
        let reports = Mutex<[String]>([])
        let s = try setup(onReloadFailure: { error in reports.withLock { $0.append(error.code.description) } })
        let path = s.directory.path + "/" + TokenSigningKeys.fileName
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let temp = path + ".test"
        #expect(FileManager.default.createFile(atPath: temp, contents: Data("{\"version\":1,\"keys\":[]}".utf8), attributes: [.posixPermissions: 0o600]))
        #expect(rename(temp, path) == 0)
        for _ in 0..<3 { #expect(s.service.keys.signingKey(at: now).kid == s.firstKid) }
        #expect(reports.withLock { $0 } == ["identity.corrupt"])

        let rotation = try { () throws -> TokenSigningKeys.Rotation in
            #expect(FileManager.default.createFile(atPath: temp, contents: good, attributes: [.posixPermissions: 0o600]))
            #expect(rename(temp, path) == 0)
            return try TokenSigningKeys.rotate(stateDirectory: s.directory.path, retireOthers: true, now: now + 1)
        }()
        #expect(s.service.keys.signingKey(at: now + 1).kid == rotation.added.kid)
        #expect(reports.withLock { $0 }.count == 1)
    }

    /// Rotations racing on one file run one after the other (the lock): exactly one adds a key,
    /// the others find it pending; no key is lost.
    @Test func racingRotationsAddExactlyOneKey() async throws {
        let s = try setup()
        let path = s.directory.path, start = now
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    do {
                        return try TokenSigningKeys.rotate(stateDirectory: path, activateIn: 3600, now: start).added.kid
                    } catch let error as IdentityError {
                        return error.code.description
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        let added = outcomes.filter { $0 != "identity.rotation-pending" }
        #expect(added.count == 1, "\(outcomes)")
        #expect(try TokenSigningKeys.read(stateDirectory: path)?.map(\.kid) == [s.firstKid] + added)
    }

    /// Out-of-range delays and a missing file are refused without writing anything.
    @Test func refusalsLeaveTheFileAsItWas() throws {
        let directory = try StateDirectory()
        #expect(identityError { _ = try TokenSigningKeys.rotate(stateDirectory: directory.path, now: now) }?.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/" + TokenSigningKeys.fileName))
        let s = try setup()
        #expect(identityError { _ = try TokenSigningKeys.rotate(stateDirectory: s.directory.path, activateIn: 31 * day, now: now) }?.code == .invalidEndDate)
        #expect(try TokenSigningKeys.read(stateDirectory: s.directory.path)?.map(\.kid) == [s.firstKid])
    }
}
