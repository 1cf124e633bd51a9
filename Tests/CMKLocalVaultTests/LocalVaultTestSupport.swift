import CMKCore
import CMKEnvelope
import CMKLocalVault
import Foundation
import Synchronization
import Testing

/// A clock that moves only when a test moves it.
final class TestClock: WallClock {
    private let current: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func advance(days: Double) { current.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }
    func advance(seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    /// A step of the clock (`date -s`, `faketime`).
    func set(_ date: Date) { current.withLock { $0 = date } }
}

/// A temporary directory holding a master key file and a vault directory.
struct VaultFixture {
    let root: URL
    let vaultDirectory: URL
    let masterKeyFile: URL
    let clock: TestClock

    func configuration(retentionDays: Int = 90, purgeProtection: Bool = true) -> LocalVaultConfiguration {
        LocalVaultConfiguration(directory: vaultDirectory, masterKey: .file(masterKeyFile),
                                retentionDays: retentionDays, purgeProtection: purgeProtection, clock: clock)
    }

    func open(retentionDays: Int = 90, purgeProtection: Bool = true) throws -> LocalVault {
        try LocalVault(configuration: configuration(retentionDays: retentionDays, purgeProtection: purgeProtection))
    }

    func keyFile(_ name: String) -> URL { vaultDirectory.appendingPathComponent("keys/\(name).json") }

    /// Every regular file under the vault directory.
    func allVaultFiles() throws -> [URL] {
        let enumerator = FileManager.default.enumerator(at: vaultDirectory, includingPropertiesForKeys: [.isRegularFileKey])
        var files: [URL] = []
        while let url = enumerator?.nextObject() as? URL {
            if try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true { files.append(url) }
        }
        return files
    }
}

/// Runs `body` with a fresh temporary directory and master key; removes the directory afterwards.
func withFixture(_ body: (VaultFixture) async throws -> Void) async throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("localvault-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: root) }
    let masterKeyFile = root.appendingPathComponent("master.key")
    try LocalVault.createMasterKeyFile(at: masterKeyFile)
    let fixture = VaultFixture(root: root, vaultDirectory: root.appendingPathComponent("vault"),
                               masterKeyFile: masterKeyFile, clock: TestClock())
    try await body(fixture)
}

func key(_ name: String = "data-at-rest-rsa2048") -> KeyReference { try! KeyReference(name) }

/// The vault error thrown by `body`, failing the test if it throws something else or nothing.
func vaultError(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async -> VaultError? {
    do {
        try await body()
        Issue.record("expected a VaultError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as VaultError {
        return error
    } catch {
        Issue.record("expected a VaultError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

func presentState(_ vault: LocalVault, _ ref: KeyReference) async throws -> KeyState {
    guard case .present(let state) = try await vault.snapshot(of: ref) else {
        Issue.record("key \(ref) is not present")
        throw VaultError(.notFound, "not present")
    }
    return state
}
