import CMKCore
import Foundation
import GRDB

/// A client created with its first secret: the secret is in memory here only, to be shown once.
public struct NewClient: Sendable {
    public var clientID: String
    /// The administrator's display name or the platform identity's host.
    public var name: String
    public var role: Role
    /// The key id of the client's secret.
    public var credentialID: String
    public var secret: ClientSecret
    public var created: Date
}

/// An administrator or platform identity as listed: never its secret or the secret's hash.
public struct Client: Sendable, Hashable, Codable {
    public var clientID: String
    /// The administrator's display name or the platform identity's host.
    public var name: String
    public var role: Role
    public var created: Date
    /// When its current secret was issued (created or last replaced).
    public var secretCreated: Date?
    /// When its current secret last authenticated, to the minute (``IdentityStore/lastUsedGranularity``).
    public var lastUsed: Date?
}

extension IdentityStore {
    // MARK: Administrators

    /// Adds a CMK administrator with a fresh secret. The 11th is refused inside the transaction,
    /// so racing `cmkctl` processes never make more than ``maximumAdministrators``.
    public func addAdministrator(name: String, at now: Date = Date()) throws -> NewClient {
        try Names.checkAdministratorName(name)
        return try addClient(.administrator, name: name, at: now) { db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM clients WHERE role = ?", arguments: [Role.administrator.rawValue]) ?? 0
            guard count < Self.maximumAdministrators else {
                throw IdentityError(.administratorLimit, "this tenant already has \(count) CMK administrators, the most it may have (\(Self.maximumAdministrators)); remove one first with `cmkctl admins remove CLIENT-ID` (`cmkctl admins list` shows them)")
            }
        }
    }

    /// The administrators, oldest first.
    public func administrators() throws -> [Client] { try clients(.administrator) }

    /// Removes an administrator and its secret; its tokens are refused from the next request on.
    public func removeAdministrator(clientID: String) throws { try removeClient(.administrator, clientID: clientID) }

    /// Gives an administrator a new secret and revokes the old one in the same transaction. The
    /// HTTP layer lets only the administrator itself call this (its token's client id).
    public func replaceAdministratorSecret(clientID: String, at now: Date = Date()) throws -> NewClient {
        try replaceSecret(.administrator, clientID: clientID, at: now)
    }

    // MARK: Platform identities

    /// Adds a platform identity for a host's cmk-syncer (one per host name) with a fresh secret.
    public func addPlatformIdentity(host: String, at now: Date = Date()) throws -> NewClient {
        let host = try Names.normalizedHost(host)
        return try addClient(.platform, name: host, at: now) { _ in }
    }

    /// The platform identities, oldest first.
    public func platformIdentities() throws -> [Client] { try clients(.platform) }

    /// Removes a platform identity and its secret.
    public func removePlatformIdentity(clientID: String) throws { try removeClient(.platform, clientID: clientID) }

    // MARK: Shared

    func addClient(_ role: Role, name: String, at now: Date, check: (Database) throws -> Void) throws -> NewClient {
        let secret = ClientSecret.generate()
        let client = NewClient(clientID: IdentitySchema.newID(), name: name, role: role, credentialID: IdentitySchema.newID(),
                               secret: secret, created: now)
        try write("add \(Self.noun(role))") { db in
            try check(db)
            if try Row.fetchOne(db, sql: "SELECT 1 FROM clients WHERE role = ? AND name = ? COLLATE NOCASE", arguments: [role.rawValue, name]) != nil {
                throw IdentityError(.duplicateName, "there is already \(Self.article(role)) \(Self.noun(role)) named \(Names.quoted(name)); choose another name, or remove that one first")
            }
            try db.execute(sql: "INSERT INTO clients(client_id, role, name, created) VALUES (?, ?, ?, ?)",
                           arguments: [client.clientID, role.rawValue, name, now.timeIntervalSince1970])
            CrashPoints.hit("identity.add-client.before-credential")
            try insertCredential(db, keyID: client.credentialID, clientID: client.clientID, name: "secret", secret: secret, start: now, end: nil)
            CrashPoints.hit("identity.add-client.before-commit")
        }
        CrashPoints.hit("identity.add-client.after-commit")
        return client
    }

    func insertCredential(_ db: Database, keyID: String, clientID: String, name: String, secret: ClientSecret, start: Date, end: Date?) throws {
        try db.execute(
            sql: "INSERT INTO credentials(key_id, client_id, name, secret_hash, hint, start, end) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [keyID, clientID, name, ClientSecret.hash(of: secret.text), secret.hint, start.timeIntervalSince1970, end?.timeIntervalSince1970])
    }

    func clients(_ role: Role) throws -> [Client] {
        try read("list the \(role == .platform ? "platform identities" : "administrators")") { db in
            try Row.fetchAll(db, sql: """
                SELECT c.client_id, c.name, c.created, k.start, k.last_used FROM clients c
                LEFT JOIN credentials k ON k.client_id = c.client_id AND k.revoked IS NULL
                WHERE c.role = ? ORDER BY c.created, c.client_id
                """, arguments: [role.rawValue]).map { row in
                Client(clientID: row["client_id"], name: row["name"], role: role, created: Date(timeIntervalSince1970: row["created"]),
                       secretCreated: IdentitySchema.date(row["start"]), lastUsed: IdentitySchema.date(row["last_used"]))
            }
        }
    }

    func removeClient(_ role: Role, clientID: String) throws {
        try write("remove \(Self.noun(role))") { db in
            try db.execute(sql: "DELETE FROM clients WHERE client_id = ? AND role = ?", arguments: [clientID, role.rawValue])
            guard db.changesCount == 1 else { throw notFound(role, clientID) }
        }
    }

    func replaceSecret(_ role: Role, clientID: String, at now: Date) throws -> NewClient {
        let secret = ClientSecret.generate()
        let keyID = IdentitySchema.newID()
        return try write("replace the secret of \(Self.article(role)) \(Self.noun(role))") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT name, created FROM clients WHERE client_id = ? AND role = ?",
                                             arguments: [clientID, role.rawValue]) else { throw notFound(role, clientID) }
            try db.execute(sql: "UPDATE credentials SET revoked = ? WHERE client_id = ? AND revoked IS NULL",
                           arguments: [now.timeIntervalSince1970, clientID])
            try insertCredential(db, keyID: keyID, clientID: clientID, name: "secret", secret: secret, start: now, end: nil)
            return NewClient(clientID: clientID, name: row["name"], role: role, credentialID: keyID, secret: secret,
                             created: Date(timeIntervalSince1970: row["created"]))
        }
    }

    func notFound(_ role: Role, _ clientID: String) -> IdentityError {
        let list = role == .platform ? "cmkctl identities list" : "cmkctl admins list"
        return IdentityError(.notFound, "no \(Self.noun(role)) has client id \(Names.quoted(clientID)); `\(list)` shows them")
    }

    static func noun(_ role: Role) -> String {
        switch role {
        case .administrator: "administrator"
        case .servicePrincipal: "service principal"
        case .platform: "platform identity"
        }
    }

    static func article(_ role: Role) -> String { role == .administrator ? "an" : "a" }
}
