import Foundation

/// What a client may do (SPEC §11): the role is fixed when the client is created.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    /// A CMK administrator (a customer person): manages the service principal's keys, reads the log.
    case administrator
    /// The tenant's service principal (a customer program or HSM): manages the root key, reads the log.
    case servicePrincipal
    /// A host's cmk-syncer: reads key versions, wraps and unwraps, nothing else.
    case platform
}

/// The tenant of this deployment, created with the store.
public struct Tenant: Sendable, Hashable, Codable {
    /// A lower-case UUID, like Entra's `AadTenantId`.
    public var tenantID: String
    /// The client id of the tenant's one service principal.
    public var servicePrincipalClientID: String
    public var created: Date
}

/// A client that proved who it is: its role, its client id and the credential it used.
public struct Principal: Sendable, Hashable, Codable {
    public var role: Role
    public var clientID: String
    /// The key id of the credential that authenticated (a token's `cred` claim).
    public var credentialID: String

    public init(role: Role, clientID: String, credentialID: String) {
        self.role = role
        self.clientID = clientID
        self.credentialID = credentialID
    }
}

/// Why a client id and secret were refused. The HTTP layer maps these to the Microsoft identity
/// platform's errors: `unknownClient` → AADSTS700016, `wrongSecret` → AADSTS7000215,
/// `credentialExpired` → AADSTS7000222, `credentialRevoked` and `credentialNotYetValid` →
/// AADSTS7000215 (Entra has no separate code; the security log keeps the precise reason).
public enum AuthenticationFailure: String, Sendable, Hashable, Codable, CaseIterable {
    /// No client with that id (never existed, removed, or not a UUID).
    case unknownClient = "unknown-client"
    /// The client exists and no credential of it has that secret.
    case wrongSecret = "wrong-secret"
    /// The secret matches a credential whose end date has passed.
    case credentialExpired = "credential-expired"
    /// The secret matches a credential that was revoked (or replaced).
    case credentialRevoked = "credential-revoked"
    /// The secret matches a credential whose start date is still ahead (the clock went back).
    case credentialNotYetValid = "credential-not-yet-valid"
}

/// The verdict of ``IdentityStore/authenticate(clientID:secret:at:)``: a value, not a thrown error.
public enum Authentication: Sendable, Hashable {
    case authenticated(Principal)
    case refused(AuthenticationFailure)

    /// The principal, or nil when refused.
    public var principal: Principal? {
        if case .authenticated(let principal) = self { return principal }
        return nil
    }

    /// The reason, or nil when authenticated.
    public var failure: AuthenticationFailure? {
        if case .refused(let failure) = self { return failure }
        return nil
    }
}
