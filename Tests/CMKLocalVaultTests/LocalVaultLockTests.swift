import CMKCore
import CMKLocalVault
import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("LocalVault locking")
struct LocalVaultLockTests {
    /// Plays "another process": holds the vault's flock, edits the key file, releases. A rotation
    /// started meanwhile must wait for the lock and keep the edit (read-modify-write under the lock).
    @Test func rotationWaitsForTheLockAndKeepsConcurrentEdits() async throws {
        try await withFixture { fixture in
            let vault = try fixture.open()
            let ref = key()
            let first = try await vault.createKey(ref, size: .bits2048)

            let lockPath = fixture.vaultDirectory.appendingPathComponent(".lock").path
            let fd = open(lockPath, O_RDWR)
            try #require(fd >= 0)
            defer { close(fd) }
            try #require(flock(fd, LOCK_EX) == 0)

            let finished = Flag()
            let rotation = Task {
                defer { finished.set() }
                return try await vault.rotateKey(ref)
            }
            // Give the rotation time to generate its key and reach the lock.
            try await Task.sleep(for: .seconds(2))
            let finishedEarly = finished.isSet
            #expect(!finishedEarly, "rotation finished while another holder had the lock")

            // The other "process" disables the first version while it holds the lock.
            let file = fixture.keyFile(ref.name)
            var document = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
            var versions = try #require(document["versions"] as? [[String: Any]])
            versions[0]["enabled"] = false
            document["versions"] = versions
            let tempFile = file.deletingLastPathComponent().appendingPathComponent("edit.tmp")
            try JSONSerialization.data(withJSONObject: document).write(to: tempFile)
            try #require(chmod(tempFile.path, 0o600) == 0)
            try #require(rename(tempFile.path, file.path) == 0)
            flock(fd, LOCK_UN)

            let second = try await rotation.value
            let state = try await presentState(vault, ref)
            #expect(state.versions.map(\.id) == [first.id, second.id])
            #expect(state.versions.first?.enabled == false)
        }
    }
}

private final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
