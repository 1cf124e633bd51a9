import CMKCore
import Foundation
import Yams

extension ConfigurationDecoder {
    static let pkcs11Keys = ["module", "token-label", "pin-file", "pin-credential", "retention-days", "purge-protection", "sessions",
                              "wrap-algorithm"]

    /// `vault.pkcs11`: module, token label and the PIN's file or credential (never the PIN).
    func decodePKCS11(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Vault.PKCS11Settings {
        let section = try reader.mapping(node, at: "vault.pkcs11", keys: Self.pkcs11Keys,
                                         secretHint: "name a file with pin-file or a systemd credential with pin-credential")
        guard let moduleNode = section["module"] else {
            throw reader.error(.missingKey, "vault.pkcs11.module", "is required: the path of the HSM's PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)", at: nil)
        }
        let module = try reader.path(moduleNode, at: "vault.pkcs11.module", base: PathSyntax.directory(of: file))
        guard let labelNode = section["token-label"] else {
            throw reader.error(.missingKey, "vault.pkcs11.token-label", "is required: the label of the token that holds the key (softhsm2-util --show-slots, pkcs11-tool --list-token-slots)", at: nil)
        }
        let label = try reader.string(labelNode, at: "vault.pkcs11.token-label", expected: "a token label")
        guard (1...32).contains(label.utf8.count), label == label.trimmingCharacters(in: .whitespaces) else {
            throw reader.error(.invalidValue, "vault.pkcs11.token-label", "\(Excerpt.quoted(label)) is not a token label (accepted: 1-32 bytes without leading or trailing blanks, as CK_TOKEN_INFO.label holds)", at: labelNode)
        }
        let pin: SyncerConfiguration.Vault.PKCS11Settings.PIN
        switch (section["pin-file"], section["pin-credential"]) {
        case (.some(let fileNode), nil):
            pin = .file(try reader.path(fileNode, at: "vault.pkcs11.pin-file", base: stateDirectory))
        case (nil, .some(let credentialNode)):
            let name = try reader.string(credentialNode, at: "vault.pkcs11.pin-credential", expected: "a systemd credential name")
            guard Self.isValidCredentialName(name) else {
                throw reader.error(.invalidValue, "vault.pkcs11.pin-credential",
                                   "\(Excerpt.quoted(name)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: credentialNode)
            }
            pin = .credential(name)
        case (.some, .some(let credentialNode)):
            throw reader.error(.invalidValue, "vault.pkcs11.pin-credential", "pin-file and pin-credential are both set: keep exactly one", at: credentialNode)
        case (nil, nil):
            throw reader.error(.missingKey, "vault.pkcs11",
                               "needs exactly one of pin-file (a path to a 0600 file holding the token's user PIN) or pin-credential (a systemd credential name)", at: node)
        }
        var settings = SyncerConfiguration.Vault.PKCS11Settings(module: module, tokenLabel: label, pin: pin)
        if let n = section["retention-days"] {
            settings.retentionDays = try reader.int(n, at: "vault.pkcs11.retention-days", range: SyncerConfiguration.Vault.PKCS11Settings.allowedRetentionDays)
        }
        if let n = section["purge-protection"] { settings.purgeProtection = try reader.bool(n, at: "vault.pkcs11.purge-protection") }
        if let n = section["sessions"] {
            settings.sessions = try reader.int(n, at: "vault.pkcs11.sessions", range: SyncerConfiguration.Vault.PKCS11Settings.allowedSessions)
        }
        if let n = section["wrap-algorithm"] {
            let name = try reader.choice(n, at: "vault.pkcs11.wrap-algorithm", noun: "a wrap algorithm",
                                         accepted: [WrapAlgorithm.aesKeyWrapPad.rawValue, WrapAlgorithm.rsaOAEP256.rawValue])
            settings.wrapAlgorithm = WrapAlgorithm(rawValue: name) ?? .aesKeyWrapPad
        }
        return settings
    }
}
