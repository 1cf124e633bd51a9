import CMKCore
import Yams

extension ConfigurationDecoder {
    static let accountKeys = ["name", "kind", "driver", "location", "create"]
    func decodeAccounts(_ node: Node, vault: SyncerConfiguration.Vault,
                        postgres: SyncerConfiguration.PostgresSettings? = nil) throws(ConfigurationError) -> [SyncerConfiguration.AccountSettings] {
        let items = try reader.sequence(node, at: "accounts", expected: "accounts (mappings with name, kind, driver, location)")
        guard !items.isEmpty else {
            throw reader.error(.invalidValue, "accounts", "is empty: configure at least one account", at: node)
        }
        var accounts: [SyncerConfiguration.AccountSettings] = []
        var names: [String: Int] = [:]
        var locations: [String: Int] = [:]
        // The vault directory's links are resolved once; each location's at its check.
        let physicalVault = vault.local.map { SystemFile.physicalPath($0.directory) }
        for (index, item) in items.enumerated() {
            let path = "accounts[\(index)]"
            let account = try decodeAccount(item, at: path)
            if account.driver == .postgres, postgres == nil {
                throw reader.error(.missingKey, "postgres", "is required: \(path) has driver postgres; add a postgres section naming the server, database and user (docs/configuration.md)", at: item.mapping?["driver"] ?? item)
            }
            if let other = names[account.name] {
                throw reader.error(.duplicate, path + ".name", "\(Excerpt.quoted(account.name)) is already the name of accounts[\(other)]: account names must be unique", at: item.mapping?["name"])
            }
            if let other = locations[account.location] {
                throw reader.error(.duplicate, path + ".location", "\(Excerpt.quoted(account.location)) is already the location of accounts[\(other)]: each account needs its own", at: item.mapping?["location"] ?? item)
            }
            if account.driver != .postgres, let vaultDirectory = vault.local?.directory, let physicalVault,
               SyncerConfiguration.AccountSettings.overlaps(account.location, vaultDirectory, physicalVault: physicalVault) {
                throw reader.error(.invalidValue, path + ".location", "\(Excerpt.quoted(account.location)) overlaps the vault directory \(Excerpt.quoted(vaultDirectory)) (symbolic links resolved): keep account data outside the vault", at: item.mapping?["location"] ?? item)
            }
            names[account.name] = index
            locations[account.location] = index
            accounts.append(account)
        }
        return accounts
    }

    private func decodeAccount(_ node: Node, at path: String) throws(ConfigurationError) -> SyncerConfiguration.AccountSettings {
        let section = try reader.mapping(node, at: path, keys: Self.accountKeys)
        guard let nameNode = section["name"] else {
            throw reader.error(.missingKey, path + ".name", "is required: 1-64 characters of a-z, 0-9 and '-', not starting with '-'", at: node)
        }
        let name = try reader.string(nameNode, at: path + ".name", expected: "an account name")
        guard SyncerConfiguration.AccountSettings.isValidName(name) else {
            throw reader.error(.invalidValue, path + ".name", "\(Excerpt.quoted(name)) is not a valid account name (accepted: 1-64 characters of a-z, 0-9 and '-', not starting with '-')", at: nameNode)
        }
        let kinds = StorageKind.allCases.map(\.rawValue)
        guard let kindNode = section["kind"] else {
            throw reader.error(.missingKey, path + ".kind", "is required (accepted: \(kinds.joined(separator: ", ")))", at: node)
        }
        let kind = try StorageKind(rawValue: reader.choice(kindNode, at: path + ".kind", noun: "a storage kind", accepted: kinds))!

        var driver = SyncerConfiguration.DriverKind(rawValue: kind.defaultDriver) ?? .directory
        if let driverNode = section["driver"] {
            let drivers = SyncerConfiguration.DriverKind.allCases.map(\.rawValue)
            driver = try SyncerConfiguration.DriverKind(rawValue: reader.choice(driverNode, at: path + ".driver", noun: "a storage driver", accepted: drivers))!
        }

        let location: String
        if driver == .postgres {
            if let locationNode = section["location"] {
                throw reader.error(.invalidValue, path + ".location", "is not used by the postgres driver: the account's rows are keyed by its name in the postgres database; remove location", at: locationNode)
            }
            location = "postgres:" + name
        } else if let locationNode = section["location"] {
            location = try reader.path(locationNode, at: path + ".location", base: stateDirectory)
        } else {
            location = PathSyntax.normalise(stateDirectory + "/accounts/" + name + (driver == .sqlite ? ".sqlite" : ""))
        }
        let create = try section["create"].map { (n) throws(ConfigurationError) in try reader.bool(n, at: path + ".create") } ?? false
        return SyncerConfiguration.AccountSettings(name: name, kind: kind, driver: driver, location: location, create: create)
    }
}
