import Foundation

/// One storage account's DEKs with their wrappings, a generation for compare-and-swap, and the
/// account's suspension (SPEC §2, §4).
public struct Keyring: Hashable, Sendable, Codable {
    /// The account this keyring belongs to.
    public var account: String
    /// The root key that wraps every DEK.
    public var key: KeyReference
    /// Increases by one with every stored change; writes are conditional on it.
    public var generation: UInt64
    /// Every DEK the account still needs, oldest first.
    public var deks: [WrappedDEK]
    /// The DEK that encrypts new writes.
    public var activeDEK: DEKID
    /// Set while the account must refuse reads and writes (key pulled).
    public var suspension: Suspension?

    public init(account: String, key: KeyReference, generation: UInt64, deks: [WrappedDEK], activeDEK: DEKID, suspension: Suspension? = nil) {
        self.account = account
        self.key = key
        self.generation = generation
        self.deks = deks
        self.activeDEK = activeDEK
        self.suspension = suspension
    }

    /// Generations stay below this (Int64.max): larger ones are refused as corrupt.
    public static let maximumGeneration = UInt64(Int64.max)

    /// The DEK with this id.
    public func dek(_ id: DEKID) -> WrappedDEK? { deks.first { $0.id == id } }

    /// The wrapping of the active DEK.
    public var active: WrappedDEK? { dek(activeDEK) }

    /// The key versions that wrap at least one DEK, in order of first use.
    public var referencedVersions: [String] {
        var seen = Set<String>()
        return deks.map(\.keyVersion).filter { seen.insert($0).inserted }
    }

    /// The key version of the active DEK: the account's binding.
    public var binding: String? { active?.keyVersion }

    /// The length of a DEK's key check value (``WrappedDEK/kcv``).
    public static let checkValueByteCount = 16

    /// Checks the invariants every stored keyring must satisfy.
    public func validate() throws(VaultError) {
        // SQLite keeps generations as signed 64-bit integers, and the next write adds one.
        guard generation >= 1, generation < Self.maximumGeneration else {
            throw VaultError(.corrupt, "keyring of account '\(account)' has generation \(generation), outside 1...\(Self.maximumGeneration - 1)")
        }
        guard !deks.isEmpty else { throw VaultError(.corrupt, "keyring of account '\(account)' has no DEKs") }
        guard Set(deks.map(\.id)).count == deks.count else {
            throw VaultError(.corrupt, "keyring of account '\(account)' lists a DEK id twice")
        }
        guard dek(activeDEK) != nil else {
            throw VaultError(.corrupt, "keyring of account '\(account)' names active DEK \(activeDEK), which it does not hold")
        }
        for dek in deks where dek.wrappedKey.isEmpty || dek.keyVersion.isEmpty {
            throw VaultError(.corrupt, "keyring of account '\(account)' holds DEK \(dek.id) without a wrapping")
        }
        for dek in deks where dek.kcv.map({ $0.count != Self.checkValueByteCount }) ?? false {
            throw VaultError(.corrupt, "keyring of account '\(account)': DEK \(dek.id) has a check value (kcv) of \(dek.kcv?.count ?? 0) bytes, not \(Self.checkValueByteCount)")
        }
        // Every rewrap adds check values to all the DEKs it touches, so a keyring that has one has
        // them all; one without beside others had its value removed to dodge the check.
        if deks.contains(where: { $0.kcv != nil }), let bare = deks.first(where: { $0.kcv == nil }) {
            throw VaultError(.corrupt, "keyring of account '\(account)': DEK \(bare.id) has no check value (kcv) while other DEKs have one")
        }
    }
}

/// Why and since when an account refuses reads and writes.
public struct Suspension: Hashable, Sendable, Codable {
    public enum Reason: String, Hashable, Sendable, Codable {
        /// The root key was deleted (pulled) in the vault.
        case keyPulled = "key-pulled"
        /// The key was purged or is missing.
        case keyMissing = "key-missing"
        /// An operator suspended the account.
        case operatorRequest = "operator"
    }

    public var reason: Reason
    public var since: Date

    public init(reason: Reason, since: Date) {
        self.reason = reason
        self.since = since
    }
}
