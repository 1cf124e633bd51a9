import ArgumentParser
import CMKTransparency
import CMKVaultLog
import Foundation

/// `cmkctl vault …`: the vault service's own state, read on its host.
struct VaultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vault",
        abstract: "The vault service's security-log key and token-signing keys, in its state directory.",
        subcommands: [VaultLogKeyCommand.self, VaultSigningKeysCommand.self, VaultRotateSigningKeyCommand.self])
}

/// `cmkctl vault log-key`: prints the verifier key of the security log's checkpoints, for the
/// customer to pin (handed over out of band, like an administrator's secret).
struct VaultLogKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log-key",
        abstract: "Print the security log's checkpoint verifier key and origin, for the customer to pin.",
        discussion: """
            The key (<origin>+<key id>+<base64 Ed25519 public key>, the C2SP signed-note verifier \
            key format) is made when cmk-vault first starts, in log-signing.key. Hand it to the \
            customer over a channel the platform does not control; the service also publishes it at \
            GET /v1.0/securityLogs/publicKey, but a customer who only trusts that copy trusts the service.

            Exit codes: 0 printed; 1 no key yet (start cmk-vault once) or unreadable; 78 the key file is \
            reachable by group or others.
            """)

    @OptionGroup var options: VaultStateOptions

    struct KeyJSON: Encodable {
        var verifierKey: String
        var origin: String
        var keyId: String
    }

    func run() throws {
        let signer: NoteSigner?
        do {
            signer = try LogSigningKey.load(stateDirectory: options.vaultState)
        } catch let error as VaultLogError {
            throw CtlError(error.description, exitCode: error.code == .permissions ? 78 : 1)
        }
        guard let verifier = signer?.verifier else {
            throw CtlError("there is no \(LogSigningKey.fileName) in \(options.vaultState): cmk-vault makes it when it first starts; start the service once, or pass --vault-state", exitCode: 1)
        }
        if options.json {
            return try Output.json(KeyJSON(verifierKey: verifier.verifierKey, origin: verifier.name, keyId: String(format: "%08x", verifier.keyID)))
        }
        Output.line(verifier.verifierKey)
    }
}
