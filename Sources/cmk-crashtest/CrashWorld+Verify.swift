import CMKAccounts
import CMKCore
import Foundation

/// What `verify` found. `ok` means zero loss: a valid keyring whose every DEK unwraps, exactly
/// the expected objects, each decrypting to its expected content.
struct VerifySummary: Codable {
    var ok = false
    var problems: [String] = []
    var generation: UInt64 = 0
    var deks = 0
    var keyVersions: [String] = []
    var currentVersion = ""
    /// Every DEK is wrapped under the vault's current version.
    var boundToCurrent = false
    var objects = 0
    var readable = 0
    var underActiveDEK = 0
}

extension CrashWorld {
    func verify() async throws -> VerifySummary {
        var summary = VerifySummary()
        let current = try await currentVersion()
        summary.currentVersion = current.id
        guard let keyring = try await account.driver.readKeyring() else {
            summary.problems.append("no keyring")
            return summary
        }
        do { try keyring.validate() } catch { summary.problems.append("invalid keyring: \(error)") }
        if keyring.account != account.name || keyring.key != account.key { summary.problems.append("keyring names another account or key") }
        if keyring.suspension != nil { summary.problems.append("keyring is suspended") }
        summary.generation = keyring.generation
        summary.deks = keyring.deks.count
        summary.keyVersions = keyring.referencedVersions
        summary.boundToCurrent = keyring.deks.allSatisfy { $0.keyVersion == current.id }
        for wrapped in keyring.deks {
            do { _ = try await plane.resolver.unwrap(wrapped, account: account.name, key: account.key) } catch {
                summary.problems.append("DEK \(wrapped.id) does not unwrap: \(error)")
            }
        }
        let listed = try await account.driver.listObjects()
        summary.objects = listed.count
        if Set(listed) != Set(Self.objectNames) { summary.problems.append("objects listed: \(listed.map(\.value))") }
        for name in Self.objectNames {
            do {
                let (plaintext, outcome) = try await plane.get(account, name, reencrypt: false)
                guard plaintext == Self.content(of: name) else {
                    summary.problems.append("\(name): wrong content")
                    continue
                }
                summary.readable += 1
                if outcome.dek == keyring.activeDEK { summary.underActiveDEK += 1 }
            } catch {
                summary.problems.append("\(name): \(error)")
            }
        }
        summary.ok = summary.problems.isEmpty
        return summary
    }
}
