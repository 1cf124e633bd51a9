import CMKCore
import Yams

/// Turns a checked YAML tree into a ``SyncerConfiguration``, section by section, in file order.
struct ConfigurationDecoder {
    let reader: NodeReader
    /// The configuration file, absolute.
    let file: String
    let environment: [String: String]
    let workingDirectory: String
    /// Set once `state-directory` is known; the base of relative data paths.
    private(set) var stateDirectory = SyncerConfiguration.defaultStateDirectory

    init(reader: NodeReader, file: String, environment: [String: String], workingDirectory: String) {
        self.reader = reader
        self.file = file
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    mutating func decode(_ root: Node) throws(ConfigurationError) -> SyncerConfiguration {
        let top = try reader.mapping(root, at: "", keys: SyncerConfiguration.topLevelKeys)
        let configDirectory = PathSyntax.directory(of: file)
        stateDirectory = try directory(top, "state-directory", base: configDirectory, variable: "STATE_DIRECTORY",
                                       fallback: SyncerConfiguration.defaultStateDirectory)
        let runtimeDirectory = try directory(top, "runtime-directory", base: configDirectory, variable: "RUNTIME_DIRECTORY",
                                             fallback: SyncerConfiguration.defaultRuntimeDirectory)
        guard let vaultNode = top["vault"] else {
            throw reader.error(.missingKey, "vault", "is required: a mapping with provider (accepted: local, azure, pkcs11), key and local, azure or pkcs11", at: nil)
        }
        let vault = try decodeVault(vaultNode)
        guard let accountsNode = top["accounts"] else {
            throw reader.error(.missingKey, "accounts", "is required: a list of at least one account with name, kind, driver and location", at: nil)
        }
        let postgres = try top["postgres"].map { (n) throws(ConfigurationError) in try decodePostgres(n) }
        let accounts = try decodeAccounts(accountsNode, vault: vault, postgres: postgres)
        let cache = try decodeCache(top["cache"])
        let sync = try decodeSync(top["sync"])
        let logging = try decodeLogging(top["logging"])
        let events = try top["events"].map { (n) throws(ConfigurationError) in try decodeEvents(n) }
        let metrics = try top["metrics"].map { (n) throws(ConfigurationError) in try decodeMetrics(n) }
        return SyncerConfiguration(file: file, stateDirectory: stateDirectory, runtimeDirectory: runtimeDirectory,
                                   vault: vault, accounts: accounts, sync: sync, cache: cache, logging: logging, events: events,
                                   metrics: metrics, postgres: postgres)
    }

    /// `state-directory` or `runtime-directory`: the file's value, else the first entry of the
    /// systemd variable (relative: against the working directory), else the fallback.
    private func directory(_ top: Section, _ key: String, base: String, variable: String, fallback: String) throws(ConfigurationError) -> String {
        if let node = top[key] {
            return try reader.path(node, at: key, base: base)
        }
        guard let value = environment[variable], !value.isEmpty else { return fallback }
        let first = String(value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)[0])
        switch PathSyntax.resolve(first, against: workingDirectory) {
        case .success(let path): return path
        case .failure(let refusal):
            throw reader.error(.invalidValue, key, "the default from $\(variable) \(refusal.reason)", at: nil)
        }
    }

    // MARK: vault

    static let vaultKeys = ["provider", "key", "local", "azure", "pkcs11"] + SyncerConfiguration.Vault.unavailableProviders
    static let localKeys = ["directory", "master-key-file", "master-key-credential", "create", "key-size", "retention-days", "purge-protection"]

    private func decodeVault(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Vault {
        let section = try reader.mapping(node, at: "vault", keys: Self.vaultKeys)
        let accepted = SyncerConfiguration.Vault.Provider.allCases.map(\.rawValue)
        guard let providerNode = section["provider"] else {
            throw reader.error(.missingKey, "vault.provider", "is required (accepted: \(accepted.joined(separator: ", ")))", at: nil)
        }
        let name = try reader.string(providerNode, at: "vault.provider", expected: "a vault provider (accepted: \(accepted.joined(separator: ", ")))")
        if SyncerConfiguration.Vault.unavailableProviders.contains(name) {
            throw reader.error(.unavailable, "vault.provider", "provider \(Excerpt.quoted(name)) is not available in this build (accepted: \(accepted.joined(separator: ", ")))", at: providerNode)
        }
        let provider = try SyncerConfiguration.Vault.Provider(rawValue: reader.choice(providerNode, at: "vault.provider", noun: "a vault provider", accepted: accepted))!
        for other in SyncerConfiguration.Vault.unavailableProviders where section[other] != nil {
            throw reader.error(.unavailable, section.child(other), "provider '\(other)' is not available in this build (accepted: \(accepted.joined(separator: ", ")))", at: section.entries[other]?.key)
        }

        var key = KeyReference.defaultName
        if let keyNode = section["key"] {
            key = try reader.string(keyNode, at: "vault.key", expected: "a key name")
            guard KeyReference.isValid(key) else {
                throw reader.error(.invalidValue, "vault.key", "\(Excerpt.quoted(key)) is not a valid key name (accepted: 1-127 characters of A-Z, a-z, 0-9 and '-')", at: keyNode)
            }
        }
        var local: SyncerConfiguration.Vault.LocalSettings?
        var azure: SyncerConfiguration.Vault.AzureSettings?
        var pkcs11: SyncerConfiguration.Vault.PKCS11Settings?
        // The settings of another provider than the one chosen are refused, naming both.
        for other in SyncerConfiguration.Vault.Provider.allCases where other != provider && section[other.rawValue] != nil {
            throw reader.error(.unknownKey, "vault.\(other.rawValue)", "is for vault.provider '\(other.rawValue)'; the provider is '\(provider.rawValue)' (remove vault.\(other.rawValue) or change the provider)", at: section.entries[other.rawValue]?.key)
        }
        switch provider {
        case .local:
            guard let localNode = section["local"] else {
                throw reader.error(.missingKey, "vault.local", "is required when vault.provider is 'local': a mapping with master-key-file or master-key-credential", at: nil)
            }
            local = try decodeLocal(localNode)
        case .azure:
            if section["local"] != nil {
                throw reader.error(.unknownKey, "vault.local", "is for vault.provider 'local'; the provider is 'azure' (remove vault.local or change the provider)", at: section.entries["local"]?.key)
            }
            guard let azureNode = section["azure"] else {
                throw reader.error(.missingKey, "vault.azure", "is required when vault.provider is 'azure': a mapping with vault-url and a credential (client-secret-credential, client-secret-file, client-certificate-file or managed-identity)", at: nil)
            }
            azure = try decodeAzure(azureNode)
        case .pkcs11:
            guard let pkcs11Node = section["pkcs11"] else {
                throw reader.error(.missingKey, "vault.pkcs11", "is required when vault.provider is 'pkcs11': a mapping with module, token-label and pin-file or pin-credential", at: nil)
            }
            pkcs11 = try decodePKCS11(pkcs11Node)
        }
        do {
            return SyncerConfiguration.Vault(provider: provider, key: try KeyReference(key), local: local, azure: azure, pkcs11: pkcs11)
        } catch {
            throw reader.error(.invalidValue, "vault.key", error.reason, at: section["key"])
        }
    }

    private func decodeLocal(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Vault.LocalSettings {
        let section = try reader.mapping(node, at: "vault.local", keys: Self.localKeys,
                                         secretHint: "name a file with master-key-file or a systemd credential with master-key-credential")
        let directory = try section["directory"].map { (n) throws(ConfigurationError) in try reader.path(n, at: "vault.local.directory", base: stateDirectory) }
            ?? PathSyntax.normalise(stateDirectory + "/vault")

        let masterKey: SyncerConfiguration.Vault.LocalSettings.MasterKey
        switch (section["master-key-file"], section["master-key-credential"]) {
        case (.some(let fileNode), nil):
            masterKey = .file(try reader.path(fileNode, at: "vault.local.master-key-file", base: stateDirectory))
        case (nil, .some(let credentialNode)):
            let name = try reader.string(credentialNode, at: "vault.local.master-key-credential", expected: "a systemd credential name")
            guard Self.isValidCredentialName(name) else {
                throw reader.error(.invalidValue, "vault.local.master-key-credential",
                                   "\(Excerpt.quoted(name)) is not a systemd credential name (accepted: a plain file name of 1-255 bytes, no '/', not '.' or '..')", at: credentialNode)
            }
            masterKey = .credential(name)
        case (.some, .some(let credentialNode)):
            throw reader.error(.invalidValue, "vault.local.master-key-credential",
                               "master-key-file and master-key-credential are both set: keep exactly one", at: credentialNode)
        case (nil, nil):
            throw reader.error(.missingKey, "vault.local",
                               "needs exactly one of master-key-file (a path to a 0600 file of 32 bytes) or master-key-credential (a systemd credential name)", at: node)
        }

        var settings = SyncerConfiguration.Vault.LocalSettings(directory: directory, masterKey: masterKey)
        if let n = section["create"] { settings.create = try reader.bool(n, at: "vault.local.create") }
        if let n = section["key-size"] {
            let allowed = SyncerConfiguration.Vault.LocalSettings.allowedKeySizes
            let size = try reader.int(n, at: "vault.local.key-size", range: 1...65_536)
            guard allowed.contains(size) else {
                throw reader.error(.invalidValue, "vault.local.key-size", "\(size) is not an accepted key size (accepted: \(allowed.map(String.init).joined(separator: ", ")))", at: n)
            }
            settings.keySize = size
        }
        if let n = section["retention-days"] {
            settings.retentionDays = try reader.int(n, at: "vault.local.retention-days", range: SyncerConfiguration.Vault.LocalSettings.allowedRetentionDays)
        }
        if let n = section["purge-protection"] { settings.purgeProtection = try reader.bool(n, at: "vault.local.purge-protection") }
        return settings
    }

    static func isValidCredentialName(_ name: String) -> Bool {
        (1...255).contains(name.utf8.count) && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0)
    }
}
