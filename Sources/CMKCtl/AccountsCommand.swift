import ArgumentParser
import CMKAccounts
import CMKCore
import CMKHost
import Foundation

/// `cmkctl accounts`: the configured storage accounts and their keyrings.
struct AccountsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "accounts",
        abstract: "List the storage accounts, or show one with its keyring.",
        subcommands: [List.self, Show.self])

    /// One account as `accounts list/show --json` print it.
    struct Summary: Encodable {
        struct DEK: Encodable {
            var id: String
            var version: String
            var algorithm: String
            var created: Date
            var active: Bool
        }

        var name: String
        var kind: String
        var driver: String
        var location: String
        var hasKeyring: Bool
        var generation: UInt64?
        var binding: String?
        var versions: [String]
        var deks: [DEK]
        var suspended: Bool
        var suspendedSince: Date?
        var suspensionReason: String?
        var objects: Int?
        /// Why the keyring or the object list could not be read.
        var error: String?

        /// The keyring in a few words: its generation, unreadable, missing (objects without one) or none yet.
        var keyringState: String {
            if let generation { return "generation \(generation)" }
            if error != nil { return "unreadable (see error)" }
            if let objects, objects > 0 { return "MISSING (the account holds \(objects) objects)" }
            return "none yet (run a sync pass)"
        }

        static func make(_ account: Account, daemon: Daemon) async -> Summary {
            let settings = daemon.configuration.account(named: account.name)
            var summary = Summary(name: account.name, kind: account.kind.rawValue, driver: settings?.driver.rawValue ?? "?",
                                  location: settings?.location ?? "?", hasKeyring: false, versions: [], deks: [], suspended: false)
            do {
                if let keyring = try await account.driver.readKeyring() {
                    summary.hasKeyring = true
                    summary.generation = keyring.generation
                    summary.binding = keyring.binding
                    summary.versions = keyring.referencedVersions
                    summary.deks = keyring.deks.map {
                        DEK(id: $0.id.description, version: $0.keyVersion, algorithm: $0.algorithm.rawValue, created: $0.created,
                            active: $0.id == keyring.activeDEK)
                    }
                    summary.suspended = keyring.suspension != nil
                    summary.suspendedSince = keyring.suspension?.since
                    summary.suspensionReason = keyring.suspension?.reason.rawValue
                }
                summary.objects = try await account.driver.listObjects().count
            } catch {
                summary.error = "\(error)"
            }
            return summary
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every account with its binding, suspension and object count.")
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print one JSON document.") var json = false

        func run() async throws {
            let daemon = try await options.buildDaemon()
            var summaries: [Summary] = []
            for account in daemon.accounts { summaries.append(await Summary.make(account, daemon: daemon)) }
            if json { return try Output.json(summaries) }
            Output.table(["ACCOUNT", "KIND", "DRIVER", "BINDING", "GENERATION", "DEKS", "SUSPENDED", "OBJECTS"], summaries.map { summary in
                [summary.name, summary.kind, summary.driver, summary.binding ?? (summary.hasKeyring ? "-" : summary.keyringState),
                 summary.generation.map { "\($0)" } ?? "-", "\(summary.deks.count)", summary.suspended ? "yes" : "no",
                 summary.objects.map { "\($0)" } ?? "?"]
            })
            for summary in summaries where summary.error != nil { Output.warning("\(summary.name): \(summary.error!)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one account: kind, driver, location, keyring generation, DEKs and their versions.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The account's name.") var name: String
        @Flag(help: "Print one JSON document.") var json = false

        func run() async throws {
            let daemon = try await options.buildDaemon()
            let summary = await Summary.make(try daemon.requireAccount(name), daemon: daemon)
            if json { return try Output.json(summary) }
            Output.line("account:    \(summary.name)")
            Output.line("kind:       \(summary.kind)")
            Output.line("driver:     \(summary.driver)")
            Output.line("location:   \(summary.location)")
            Output.line("keyring:    \(summary.keyringState)")
            Output.line("binding:    \(summary.binding ?? "-")")
            Output.line("suspended:  \(summary.suspended ? "yes, since \(Output.date(summary.suspendedSince)) (\(summary.suspensionReason ?? "?"))" : "no")")
            Output.line("objects:    \(summary.objects.map { "\($0)" } ?? "?")")
            if let error = summary.error { Output.line("error:      \(error)") }
            Output.line()
            Output.table(["DEK", "VERSION", "ALGORITHM", "CREATED", "ACTIVE"], summary.deks.map {
                [$0.id, $0.version, $0.algorithm, Output.date($0.created), $0.active ? "yes" : ""]
            })
        }
    }
}
