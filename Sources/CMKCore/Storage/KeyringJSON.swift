import Foundation

/// The keyring's stored JSON form and the checks every stored keyring passes.
public enum KeyringJSON {
    /// Keyrings are small; anything larger than this is not one.
    public static let maximumSize = 16 << 20

    /// Decodes and checks a stored keyring. JSON in the form cmk-syncer writes is read by
    /// ``KeyringJSONReader`` (the cold start reads thousands); anything else by `JSONDecoder`,
    /// which decides what is refused and how.
    public static func decode(_ data: Data, account: String, source: String) throws -> Keyring {
        let keyring: Keyring
        do {
            keyring = try KeyringJSONReader.decode(data) ?? JSONDecoder().decode(Keyring.self, from: data)
        } catch {
            throw StorageError(.corrupt, "\(source) is not a valid keyring; restore it from a backup (the driver never overwrites it)", underlying: error)
        }
        guard keyring.account == account else {
            throw StorageError(.wrongAccount, "\(source) belongs to account '\(keyring.account)', not '\(account)'")
        }
        do { try keyring.validate() } catch {
            throw StorageError(.corrupt, "\(source) holds an inconsistent keyring", underlying: error)
        }
        return keyring
    }

    /// Checks `keyring` before any write and returns its JSON.
    public static func encodeChecked(_ keyring: Keyring, account: String, expectedGeneration: UInt64?) throws -> Data {
        let wanted = (expectedGeneration ?? 0) + 1
        guard keyring.generation == wanted else {
            throw StorageError(.corrupt, "refusing to store keyring generation \(keyring.generation) of account '\(account)': after generation \(expectedGeneration.map(String.init) ?? "none") it must be \(wanted)")
        }
        guard keyring.account == account else {
            throw StorageError(.wrongAccount, "refusing to store a keyring of account '\(keyring.account)' for account '\(account)'")
        }
        do { try keyring.validate() } catch {
            throw StorageError(.corrupt, "refusing to store an inconsistent keyring for account '\(account)'", underlying: error)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            return try encoder.encode(keyring)
        } catch {
            throw StorageError(.io, "cannot encode the keyring of account '\(account)'", underlying: error)
        }
    }
}
