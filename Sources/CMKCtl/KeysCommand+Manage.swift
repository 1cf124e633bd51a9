import ArgumentParser
import CMKAudit
import CMKCore
import CMKHost
import CMKLocalVault
import Foundation

/// Runs one key operation against the provider's administration interface, records it in the
/// security log and nudges the daemon. A key change that the security log could not record is
/// refused before anything is changed.
struct KeyOperation {
    let daemon: Daemon
    let admin: any KeyVaultAdministration

    /// The operation context, or an error naming the provider and where keys are managed instead,
    /// or why the security log cannot be appended.
    init(_ options: GlobalOptions) async throws {
        let daemon = try await options.buildDaemon()
        let capabilities = daemon.vault.capabilities
        guard capabilities.managesKeys, let admin = daemon.administration else {
            let hint = capabilities.managementHint ?? "use the provider's own tools"
            throw CtlError("the '\(capabilities.provider)' vault provider does not let cmkctl manage keys: \(hint)")
        }
        do {
            try daemon.securityLog.requireAppendable()
        } catch {
            throw CtlError("refused, nothing was changed: every key change is recorded in the security log, and it cannot be appended: "
                + "\(error). Fix the log first (`cmkctl audit verify`; docs/security-log.md)", exitCode: CMKExitCode.failure)
        }
        self.daemon = daemon
        self.admin = admin
    }

    var key: KeyReference { daemon.settings.key }

    /// Records the operation and tells the daemon.
    func finish(_ operation: String, version: String? = nil, details: [String: String] = [:]) throws {
        var details = details
        details["operation"] = operation
        do {
            try daemon.securityLog.append(SecurityLogEntry(event: .operatorAction, key: key.name, version: version,
                                                           actor: SecurityLog.localActor(), details: details))
        } catch {
            DaemonProcess(state: daemon.state).nudgeAfterChange()
            throw CtlError("\(operation) was done, but its security-log record could not be written: \(error)")
        }
        DaemonProcess(state: daemon.state).nudgeAfterChange()
    }

    /// The version, or a usage error listing the key's versions.
    func requireVersion(_ id: String) async throws -> KeyVersion {
        guard case .present(let state) = try await daemon.vault.snapshot(of: key) else {
            throw CtlError("key \(key) is not present in the vault (pulled or missing); see `cmkctl keys list`")
        }
        guard let version = state.version(id) else {
            throw CtlError("key \(key) has no version \(id) (versions: \(state.versions.map(\.id).joined(separator: ", ")))", exitCode: CMKExitCode.usage)
        }
        return version
    }

    func update(_ id: String, _ update: KeyVersionUpdate, operation: String, details: [String: String] = [:]) async throws -> KeyVersion {
        _ = try await requireVersion(id)
        let version = try await admin.updateVersion(key, version: id, update)
        Output.line("version \(version.id) of key \(key): enabled \(version.enabled ? "yes" : "no"), not-before \(Output.date(version.notBefore)), expires \(Output.date(version.expires))")
        try finish(operation, version: id, details: details)
        return version
    }
}

extension KeysCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the configured root key with its first version.",
            discussion: "A key the local vault held before and that was purged, or whose file vanished, is created again only with --replace-purged.")
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Create the key again although it was purged or its file vanished. Nothing encrypted under the old key becomes readable.")
        var replacePurged = false

        func run() async throws {
            let operation = try await KeyOperation(options)
            let size = RSAKeySize(rawValue: operation.daemon.configuration.vault.local?.keySize ?? 2048) ?? .bits2048
            guard replacePurged else {
                let version = try await operation.admin.createKey(operation.key, size: size)
                // The pkcs11 provider's root keys are AES-256 keys generated on the token (SPEC §2).
                let kind = operation.admin.capabilities.wrapAlgorithm == .aesKeyWrapPad ? "AES-256 on the token" : "RSA \(size.rawValue)"
                Output.line("created key \(operation.key) (\(kind)), version \(version.id)")
                return try operation.finish("keys create", version: version.id)
            }
            guard let vault = operation.admin as? LocalVault else {
                throw CtlError("--replace-purged applies to the local vault, which keeps a history of its keys", exitCode: CMKExitCode.usage)
            }
            let (version, replaced) = try await vault.replaceLostKey(operation.key, size: size)
            Output.warning("replacing key \(operation.key) (\(replaced)): the new key cannot read anything encrypted under the old one")
            Output.line("created key \(operation.key) again (RSA \(size.rawValue)), version \(version.id)")
            try operation.finish("keys create --replace-purged", version: version.id, details: ["replaced": replaced.description])
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a new version, which becomes current; the daemon rebinds every account to it.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let operation = try await KeyOperation(options)
            let version = try await operation.admin.rotateKey(operation.key)
            Output.line("rotated key \(operation.key): new current version \(version.id)")
            try operation.finish("keys rotate", version: version.id)
        }
    }

    struct Pull: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pull the key: soft-delete it. The daemon is signalled and suspends every account in a pass at once (unsignalled, its key-state probe notices within sync.probe-interval); reads are refused until `keys restore`.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let operation = try await KeyOperation(options)
            let deleted = try await operation.admin.deleteKey(operation.key)
            Output.line("pulled key \(operation.key) (soft-deleted at \(Output.date(deleted.deletedDate)); "
                + "\(deleted.scheduledPurgeDate.map { "purged at \(Output.date($0))" } ?? "no scheduled purge")); restore with `cmkctl keys restore`")
            try operation.finish("keys pull")
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recover the pulled key with all its versions. The daemon is signalled and resumes every suspended account in a pass at once (unsignalled, its key-state probe notices within sync.probe-interval).")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let operation = try await KeyOperation(options)
            let state = try await operation.admin.recoverKey(operation.key)
            Output.line("restored key \(operation.key) with \(state.versions.count) versions (current \(state.current?.id ?? "none"))")
            try operation.finish("keys restore")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Purge the pulled key for good. Every object encrypted under it becomes unreadable.",
            discussion: "Irreversible: requires --yes. Refused while purge protection holds.")
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Confirm that the data encrypted under the key is to be destroyed.") var yes = false

        func run() async throws {
            guard yes else {
                throw CtlError("purging destroys every object encrypted under the key and cannot be undone; pass --yes to confirm", exitCode: CMKExitCode.usage)
            }
            let operation = try await KeyOperation(options)
            try await operation.admin.purgeKey(operation.key)
            Output.line("purged key \(operation.key)")
            try operation.finish("keys purge")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a version: it can no longer wrap or unwrap.",
            discussion: "Refused while the version still wraps DEKs (their data would become unreadable) unless --force is given; see `cmkctl keys list` and `cmkctl status` (safe to disable).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The version.") var version: String
        @Flag(help: "Disable it even though accounts still use it.") var force = false

        func run() async throws {
            let operation = try await KeyOperation(options)
            _ = try await operation.requireVersion(version)
            let listing = try await KeyListing.make(operation.daemon)
            if let usage = listing.versions.first(where: { $0.version == version }), usage.deks > 0 {
                let message = "version \(version) still wraps \(usage.deks) DEKs of accounts \(usage.accounts.joined(separator: ", ")); disabling it makes their data unreadable"
                guard force else {
                    throw CtlError("\(message): refused (rotate and let the daemon rebind first, or pass --force)")
                }
                Output.warning(message)
            }
            _ = try await operation.update(version, KeyVersionUpdate(enabled: false), operation: "keys disable",
                                           details: force ? ["force": "true"] : [:])
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a version again.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The version.") var version: String

        func run() async throws {
            let operation = try await KeyOperation(options)
            _ = try await operation.update(version, KeyVersionUpdate(enabled: true), operation: "keys enable")
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a version's expiry: from then on it no longer wraps (it still unwraps).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The version.") var version: String
        @Option(help: ArgumentHelp("When it expires: RFC 3339 or 'now'.", valueName: "time")) var at: String = "now"

        func run() async throws {
            let expires = try TimeArgument.parse(at, option: "--at")
            let operation = try await KeyOperation(options)
            _ = try await operation.update(version, KeyVersionUpdate(expires: .set(expires)), operation: "keys expire",
                                           details: ["expires": expires.ISO8601Format()])
        }
    }
}
