import CMKCore

extension SyncerConfiguration {
    /// The storage drivers an account can use in this build.
    public enum DriverKind: String, Sendable, Hashable, CaseIterable {
        /// A directory per account (module `CMKDirectoryStorage`).
        case directory
        /// An SQLite database file per account (module `CMKSQLiteStorage`).
        case sqlite
        /// Rows keyed by the account's name in the `postgres` database (module `CMKPostgresStorage`).
        case postgres
    }

    /// One entry of `accounts`: a storage account kept encrypted under the root key.
    public struct AccountSettings: Sendable, Hashable {
        /// `accounts[].name` (required, not secret): 1–64 characters of `a-z 0-9 -`, not starting
        /// with `-`; unique in the file. Appears in logs as `CMK_ACCOUNT`.
        public var name: String
        /// `accounts[].kind` (`file | sql | audit | analytics | secret-store`, required, not secret).
        public var kind: StorageKind
        /// `accounts[].driver` (`directory | sqlite | postgres`, default: the kind's default driver —
        /// `directory` for file and audit, `sqlite` for the others; not secret).
        public var driver: DriverKind
        /// `accounts[].location` (path, not secret): a directory for `directory`, a database file
        /// for `sqlite`. Default `<state-directory>/accounts/<name>` (plus `.sqlite` for sqlite).
        /// `postgres` accounts take no location: theirs is `postgres:<name>`, rows keyed by the name.
        /// Relative values resolve against the state directory. Unique among accounts.
        public var location: String
        /// `accounts[].create` (bool, default `false`, not secret): create the location on first run.
        public var create: Bool

        public init(name: String, kind: StorageKind, driver: DriverKind, location: String, create: Bool = false) {
            self.name = name
            self.kind = kind
            self.driver = driver
            self.location = location
            self.create = create
        }

        /// Whether `name` is an acceptable account name.
        public static func isValidName(_ name: String) -> Bool {
            guard (1...64).contains(name.utf8.count), name.utf8.first != UInt8(ascii: "-") else { return false }
            return name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
            }
        }

        /// Whether an account at `location` would keep data inside the vault directory `vault`, or
        /// the vault inside it: compared as written and with symbolic links resolved, so a location
        /// that is a link into the vault is refused too.
        public static func overlaps(_ location: String, _ vault: String) -> Bool {
            overlaps(location, vault, physicalVault: SystemFile.physicalPath(vault))
        }

        /// ``overlaps(_:_:)`` with the vault directory's links already resolved
        /// (`SystemFile.physicalPath(vault)`), for checking many locations against one vault:
        /// only `location` is resolved here.
        public static func overlaps(_ location: String, _ vault: String, physicalVault: String) -> Bool {
            func inside(_ path: String, _ ancestor: String) -> Bool {
                path == ancestor || ancestor == "/" || path.hasPrefix(ancestor + "/")
            }
            let physicalLocation = SystemFile.physicalPath(location)
            return inside(location, vault) || inside(vault, location)
                || inside(physicalLocation, physicalVault) || inside(physicalVault, physicalLocation)
        }
    }
}
