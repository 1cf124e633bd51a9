import ArgumentParser
import CMKAccounts
import CMKCore
import CMKHost
import Foundation

/// `cmkctl keys`: the root key's versions, and key management where the provider allows it.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List the root key's versions; create, rotate, pull, restore, purge, enable, disable or expire them (local vault).",
        discussion: """
            Key management needs a provider that allows it (the local vault). Every change is recorded in the \
            security log and, when the daemon runs, it is told to run a pass at once.
            """,
        subcommands: [List.self, Create.self, Rotate.self, Pull.self, Restore.self, Purge.self, Disable.self, Enable.self, Expire.self])

    /// `keys list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the key's versions with their attributes and how many accounts and DEKs reference each.")

        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print one JSON document.") var json = false

        func run() async throws {
            let daemon = try await options.buildDaemon()
            let document = try await KeyListing.make(daemon)
            if json {
                try Output.json(document)
                return
            }
            Output.line("key \(document.key) (provider \(document.provider)): \(document.state)")
            if let deleted = document.deleted {
                Output.line("PULLED: deleted \(Output.date(deleted.deletedDate)); purged \(deleted.scheduledPurgeDate.map { "at \(Output.date($0))" } ?? "never automatically"); restore with `cmkctl keys restore`")
            }
            Output.table(["VERSION", "CURRENT", "ENABLED", "CREATED", "NOT-BEFORE", "EXPIRES", "ACCOUNTS", "DEKS"], document.versions.map { version in
                [version.version, version.current ? "yes" : "", version.enabled.map { $0 ? "yes" : "no" } ?? "?", Output.date(version.created),
                 Output.date(version.notBefore), Output.date(version.expires), "\(version.accountCount)", "\(version.deks)"]
            })
        }
    }
}

/// What `keys list --json` prints; also used to check a version's use before disabling it.
struct KeyListing: Encodable {
    struct Version: Encodable {
        var version: String
        var created: Date?
        var enabled: Bool?
        var notBefore: Date?
        var expires: Date?
        var current: Bool
        /// False for versions only the keyrings know (deleted from the vault).
        var inVault: Bool
        var accounts: [String]
        var accountCount: Int
        var deks: Int
    }

    struct Deleted: Encodable {
        var deletedDate: Date
        var scheduledPurgeDate: Date?
    }

    var key: String
    var provider: String
    /// `present`, `deleted` (pulled) or `missing`.
    var state: String
    var deleted: Deleted?
    var versions: [Version]
    /// Accounts whose keyring could not be read, with the reason.
    var unreadable: [String: String]

    static func make(_ daemon: Daemon) async throws -> KeyListing {
        let key = daemon.settings.key
        let snapshot = try await daemon.vault.snapshot(of: key)
        var keyrings: [String: Keyring] = [:]
        var unreadable: [String: String] = [:]
        for account in daemon.accounts {
            do {
                if let keyring = try await account.driver.readKeyring() { keyrings[account.name] = keyring }
            } catch {
                unreadable[account.name] = "\(error)"
            }
        }
        let state: String
        var deleted: Deleted?
        let vaultVersions: [KeyVersion]
        switch snapshot {
        case .present(let present):
            state = "present"
            vaultVersions = present.versions
        case .deleted(let key):
            state = "deleted"
            deleted = Deleted(deletedDate: key.deletedDate, scheduledPurgeDate: key.scheduledPurgeDate)
            vaultVersions = key.versions
        case .missing:
            state = "missing"
            vaultVersions = []
        }
        var ids = vaultVersions.map(\.id)
        for keyring in keyrings.values.sorted(by: { $0.account < $1.account }) {
            for id in keyring.referencedVersions where !ids.contains(id) { ids.append(id) }
        }
        let versions = ids.map { id in
            let version = vaultVersions.first { $0.id == id }
            let users = keyrings.filter { $0.value.deks.contains { $0.keyVersion == id } }.keys.sorted()
            let deks = keyrings.values.reduce(0) { $0 + $1.deks.filter { $0.keyVersion == id }.count }
            return Version(version: id, created: version?.created, enabled: version?.enabled, notBefore: version?.notBefore,
                           expires: version?.expires, current: id == vaultVersions.last?.id, inVault: version != nil,
                           accounts: users, accountCount: users.count, deks: deks)
        }
        return KeyListing(key: key.name, provider: daemon.vault.capabilities.provider, state: state, deleted: deleted,
                          versions: versions, unreadable: unreadable)
    }
}
