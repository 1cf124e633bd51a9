import Foundation
import GRDB

/// Whether a credential named by a token still lets its client in (``IdentityStore/credentialStatus(clientID:credentialID:role:at:)``).
public enum CredentialStatus: String, Sendable, Hashable, Codable {
    case live
    /// The credential was revoked or replaced.
    case revoked
    /// Its end date has passed (or its start is still ahead).
    case expired
    /// The client was removed, its role changed, or the credential is not the client's.
    case principalRemoved = "principal-removed"
}

extension IdentityStore {
    /// Checks a client id and secret. Every credential of the client is compared with the
    /// secret's hash in constant time (``ConstantTime/equal(_:_:)``, no early exit), so the time
    /// taken does not say which bytes matched. On success the credential's `last_used` is written
    /// when the recorded one is a minute old or more.
    ///
    /// - Returns: the principal, or why it was refused; throws only when the store fails.
    public func authenticate(clientID: String, secret: String, at now: Date = Date()) throws -> Authentication {
        let presented = ClientSecret.hash(of: secret)
        let lookup: SecretLookup = try read("authenticate a client") { db in
            guard let role = try String.fetchOne(db, sql: "SELECT role FROM clients WHERE client_id = ?", arguments: [clientID]).flatMap(Role.init(rawValue:)) else {
                return .unknownClient
            }
            var result = SecretLookup.noMatch
            for row in try Row.fetchAll(db, sql: "SELECT key_id, secret_hash, start, end, revoked, last_used FROM credentials WHERE client_id = ?",
                                        arguments: [clientID]) {
                let stored: Data = row["secret_hash"]
                if ConstantTime.equal(presented, stored) {
                    result = .match(Principal(role: role, clientID: clientID, credentialID: row["key_id"]), start: row["start"], end: row["end"],
                                    revoked: (row["revoked"] as Double?) != nil, lastUsed: row["last_used"])
                }
            }
            return result
        }
        switch lookup {
        case .unknownClient:
            return .refused(.unknownClient)
        case .noMatch:
            return .refused(.wrongSecret)
        case .match(let principal, let start, let end, let revoked, let lastUsed):
            let seconds = now.timeIntervalSince1970
            if revoked { return .refused(.credentialRevoked) }
            if let end, end <= seconds { return .refused(.credentialExpired) }
            if start > seconds + TokenService.clockLeeway { return .refused(.credentialNotYetValid) }
            if lastUsed.map({ seconds - $0 >= Self.lastUsedGranularity || seconds < $0 }) ?? true {
                try recordUse(principal.credentialID, at: seconds)
            }
            return .authenticated(principal)
        }
    }

    /// What the read transaction of ``authenticate(clientID:secret:at:)`` found.
    private enum SecretLookup {
        case unknownClient, noMatch
        case match(Principal, start: Double, end: Double?, revoked: Bool, lastUsed: Double?)
    }

    /// Writes `last_used`, unless another process wrote a recent one meanwhile.
    func recordUse(_ keyID: String, at seconds: Double) throws {
        try write("record a credential's last use") { db in
            try db.execute(sql: "UPDATE credentials SET last_used = ? WHERE key_id = ? AND (last_used IS NULL OR last_used <= ? OR last_used > ?)",
                           arguments: [seconds, keyID, seconds - Self.lastUsedGranularity, seconds])
        }
    }

    /// Whether `credentialID` is still a live credential of the client `clientID` with `role`:
    /// what a token verification asks on every request, so a revoked or expired credential or a
    /// removed client stops working at once.
    public func credentialStatus(clientID: String, credentialID: String, role: Role, at now: Date = Date()) throws -> CredentialStatus {
        try read("check a token's credential") { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT k.start, k.end, k.revoked FROM credentials k JOIN clients c ON c.client_id = k.client_id
                WHERE k.key_id = ? AND k.client_id = ? AND c.role = ?
                """, arguments: [credentialID, clientID, role.rawValue]) else { return .principalRemoved }
            if (row["revoked"] as Double?) != nil { return .revoked }
            let seconds = now.timeIntervalSince1970
            if let end: Double = row["end"], end <= seconds { return .expired }
            if (row["start"] as Double) > seconds + TokenService.clockLeeway { return .expired }
            return .live
        }
    }
}
