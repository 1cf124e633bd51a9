import ArgumentParser
import CMKConfiguration
import CMKIdentity
import Foundation

/// `cmkctl vault signing-keys`: the token-signing keys in the vault service's state directory,
/// with what each does now. Never prints key material.
struct VaultSigningKeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing-keys",
        abstract: "List the access-token signing keys: which one signs, which are published, until when.",
        discussion: """
            Reads token-signing.key in the vault service's state directory (run as the service's \
            user). STATE is `signing` (signs new tokens), `next` (published, signs from ACTIVATES on) \
            or `retiring` (no longer signs; published until UNTIL, when the last token it signed has \
            expired). Only key ids and dates are printed.

            Exit codes: 0 listed; 1 no key file yet (start cmk-vault once) or unreadable; 78 the file \
            is reachable by group or others.
            """)

    @OptionGroup var options: VaultStateOptions

    struct KeyJSON: Encodable {
        var kid: String
        var state: String
        var activates: Date
        var publishedUntil: Date?
    }

    func run() throws {
        guard let keys = try options.run({ try TokenSigningKeys.read(stateDirectory: options.vaultState) }) else {
            throw CtlError("there is no \(TokenSigningKeys.fileName) in \(options.vaultState): cmk-vault makes it when it first starts; start the service once, or pass --vault-state", exitCode: 1)
        }
        let rows = Self.describe(keys, at: Date())
        if options.json { return try Output.json(rows) }
        Output.table(["KID", "STATE", "ACTIVATES", "UNTIL"], rows.map {
            [$0.kid, $0.state, Output.date($0.activates), $0.publishedUntil.map(Output.date) ?? "-"]
        })
    }

    /// Each key's state at `now`; keys no longer published are left out (the service ignores them
    /// too, and the next rotation removes them from the file).
    static func describe(_ keys: [TokenSigningKeys.Key], at now: Date) -> [KeyJSON] {
        let signing = keys.last { $0.activates <= now }?.kid ?? keys.first?.kid
        return keys.indices.compactMap { index in
            let key = keys[index]
            let until = index + 1 < keys.count ? keys[index + 1].activates.addingTimeInterval(TokenService.lifetime + TokenService.clockLeeway) : nil
            if let until, until <= now { return nil }
            let state = key.kid == signing ? "signing" : key.activates > now ? "next" : "retiring"
            return KeyJSON(kid: key.kid, state: state, activates: key.activates, publishedUntil: until)
        }
    }
}

/// `cmkctl vault rotate-signing-key`: adds a token-signing key (docs/vault-service.md, "Signing
/// keys and their rotation").
struct VaultRotateSigningKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-signing-key",
        abstract: "Add a new access-token signing key, published before it signs; or replace every key at once.",
        discussion: """
            A planned rotation adds a key that is published in the JWKS at once and begins to sign \
            after --activate-in (default 24h: longer than verifiers cache a JWKS). The key it replaces \
            keeps verifying the tokens it signed until they expire (1 hour plus 60 s after the \
            switchover) and is removed from the file by a later rotation. A rotation is refused while \
            the key of the previous one has not begun to sign.

            --retire-now is for a key that may have leaked: the new key signs at once and every other \
            key is removed, so every token issued before is refused from the service's next request \
            on; clients simply get new tokens. The running service reads the new file at its next \
            request; no restart. Run as the vault service's user.

            Exit codes: 0 rotated; 1 a rotation is pending, no key file yet, or it cannot be written \
            (then it is unchanged); 2 a bad --activate-in; 78 the file is reachable by group or others.
            """)

    @OptionGroup var options: VaultStateOptions

    @Option(help: ArgumentHelp("How long the new key is published before it signs, 0s to 30d (default 24h; \(DurationSyntax.hint)).", valueName: "duration"))
    var activateIn: String?

    @Flag(help: "Sign with the new key at once and remove every other key: every token issued before is refused.")
    var retireNow = false

    struct RotationJSON: Encodable {
        var added: String
        var activates: Date
        var removed: [String]
        var keys: [VaultSigningKeysCommand.KeyJSON]
    }

    func validate() throws {
        guard let activateIn else { return }
        if retireNow { throw ValidationError("--retire-now signs with the new key at once; leave out --activate-in") }
        guard let delay = DurationSyntax.parse(activateIn), delay <= .seconds(30 * 86_400) else {
            throw ValidationError("--activate-in '\(activateIn.prefix(32))' is not a duration from 0s to 30d (\(DurationSyntax.hint))")
        }
    }

    func run() throws {
        let delay = activateIn.flatMap(DurationSyntax.parse) ?? .seconds(Int64(TokenSigningKeys.defaultActivationDelay))
        let now = Date()
        let rotation = try options.run {
            try TokenSigningKeys.rotate(stateDirectory: options.vaultState, activateIn: TimeInterval(delay.components.seconds),
                                        retireOthers: retireNow, now: now)
        }
        let keys = VaultSigningKeysCommand.describe(rotation.keys, at: now)
        if options.json {
            return try Output.json(RotationJSON(added: rotation.added.kid, activates: rotation.added.activates, removed: rotation.removed, keys: keys))
        }
        Output.line("added:      \(rotation.added.kid)")
        Output.line("signs from: \(Output.date(rotation.added.activates))\(retireNow ? " (now)" : "")")
        if !rotation.removed.isEmpty { Output.line("removed:    \(rotation.removed.joined(separator: ", "))") }
        if retireNow {
            Output.warning("every token issued before is refused from the vault service's next request on; clients must get new tokens")
        }
    }
}
