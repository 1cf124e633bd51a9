import CMKIdentity
import Foundation
import Logging

/// Something the security log must hold: every change, every failed authentication, every token
/// issued. Carries ids, names and addresses, never a secret or a token.
public struct ServiceEvent: Sendable, Hashable {
    /// `authentication-failed`, `token-issued`, `credential-added`, … (docs/vault-service.md).
    public var operation: String
    /// The client id of whoever acted, when known.
    public var actor: String?
    public var role: String?
    /// The source address of the request.
    public var address: String
    /// Operation-specific fields (key id, name, reason, audience).
    public var details: [String: String]

    static func authenticationFailed(clientID: String, reason: String, address: String) -> Self {
        Self(operation: "authentication-failed", actor: clientID, address: address, details: ["reason": reason])
    }

    static func authenticationThrottled(clientID: String, address: String) -> Self {
        Self(operation: "authentication-throttled", actor: clientID, address: address, details: [:])
    }

    static func tokenIssued(principal: Principal, audience: String, address: String) -> Self {
        Self(operation: "token-issued", actor: principal.clientID, role: principal.role.rawValue, address: address,
             details: ["credential": principal.credentialID, "audience": audience])
    }

    static func tokenRefused(reason: String, address: String) -> Self {
        Self(operation: "token-refused", address: address, details: ["reason": reason])
    }

    static func accessDenied(principal: Principal, route: String, address: String) -> Self {
        Self(operation: "access-denied", actor: principal.clientID, role: principal.role.rawValue, address: address, details: ["route": route])
    }

    static func credentialAdded(by principal: Principal?, keyID: String, name: String, address: String) -> Self {
        Self(operation: "credential-added", actor: principal?.clientID, role: principal?.role.rawValue, address: address,
             details: ["keyId": keyID, "displayName": name])
    }

    static func credentialRevoked(by principal: Principal?, keyID: String, address: String) -> Self {
        Self(operation: "credential-revoked", actor: principal?.clientID, role: principal?.role.rawValue, address: address, details: ["keyId": keyID])
    }

    static func administratorSecretReplaced(principal: Principal, address: String) -> Self {
        Self(operation: "administrator-secret-replaced", actor: principal.clientID, role: principal.role.rawValue, address: address, details: [:])
    }
}

/// Where service events go: the security log (a Merkle tree, once it is wired) and the journal.
public protocol ServiceEventSink: Sendable {
    func record(_ event: ServiceEvent)
}

/// Writes events to the journal (MESSAGE_ID per docs/vault-service.md), one line each.
public struct JournalEventSink: ServiceEventSink {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func record(_ event: ServiceEvent) {
        var metadata: Logger.Metadata = ["CMK_OPERATION": .string(event.operation), "CMK_ADDRESS": .string(event.address)]
        if let actor = event.actor { metadata["CMK_ACTOR"] = .string(actor) }
        if let role = event.role { metadata["CMK_ROLE"] = .string(role) }
        for (key, value) in event.details { metadata["CMK_" + key.uppercased()] = .string(value) }
        let failed = event.operation.hasSuffix("-failed") || event.operation.hasSuffix("-refused") || event.operation.hasSuffix("-denied")
            || event.operation.hasSuffix("-throttled")
        metadata["message_id"] = .string(VaultMessageID.event)
        logger.log(level: failed ? .warning : .notice, "Vault service event.", metadata: metadata)
    }
}
