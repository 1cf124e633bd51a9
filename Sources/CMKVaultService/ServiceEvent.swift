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

    /// Recorded before the key exists (fail closed): the route chooses the key id first and the
    /// store creates the key under it, so the record names the key as the listing will.
    static func credentialAdded(by principal: Principal?, keyID: String, name: String, end: Date?, address: String) -> Self {
        var details = ["keyId": keyID, "displayName": name]
        if let end { details["endDateTime"] = GraphDate.string(end) }
        return Self(operation: "credential-added", actor: principal?.clientID, role: principal?.role.rawValue, address: address, details: details)
    }

    static func credentialRevoked(by principal: Principal?, keyID: String, address: String) -> Self {
        Self(operation: "credential-revoked", actor: principal?.clientID, role: principal?.role.rawValue, address: address, details: ["keyId": keyID])
    }

    static func administratorSecretReplaced(principal: Principal, address: String) -> Self {
        Self(operation: "administrator-secret-replaced", actor: principal.clientID, role: principal.role.rawValue, address: address, details: [:])
    }

    /// A change whose record (at `index`) was appended but which then failed (a concurrent
    /// request took the name, the identity store failed): `<operation>-failed`, the same actor
    /// and details, the index of the record it cancels and the store's error code.
    func failed(recordIndex index: UInt64?, reason: String) -> Self {
        var details = self.details
        if let index { details["record"] = String(index) }
        details["reason"] = reason
        return Self(operation: operation + "-failed", actor: actor, role: role, address: address, details: details)
    }
}

/// Where service events go: the security log (a record that must be durable before the change
/// it describes is made, or the token it describes handed out) and the journal.
public protocol ServiceEventSink: Sendable {
    /// Records `event`; returns its index in the security log (nil for a sink without one).
    ///
    /// - Throws: ``EventNotRecorded`` when the record could not be made durable. The caller must
    ///   then not make the change (answer 503); a refusal stays a refusal.
    @discardableResult
    func record(_ event: ServiceEvent) async throws -> UInt64?
}

/// The security log could not record an event (a full or failing disk): what was asked did not
/// happen. `detail` names the operation and the fix, never a secret.
public struct EventNotRecorded: Error, Sendable, CustomStringConvertible {
    /// The operation that was not recorded.
    public let operation: String
    public let detail: String

    public init(operation: String, detail: String) {
        self.operation = operation
        self.detail = detail
    }

    public var description: String { detail }
}

/// Writes events to the journal (MESSAGE_ID per docs/vault-service.md), one line each.
public struct JournalEventSink: ServiceEventSink {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    @discardableResult
    public func record(_ event: ServiceEvent) async throws -> UInt64? {
        var metadata: Logger.Metadata = ["CMK_OPERATION": .string(event.operation), "CMK_ADDRESS": .string(event.address)]
        if let actor = event.actor { metadata["CMK_ACTOR"] = .string(actor) }
        if let role = event.role { metadata["CMK_ROLE"] = .string(role) }
        for (key, value) in event.details { metadata["CMK_" + key.uppercased()] = .string(value) }
        let failed = event.operation.hasSuffix("-failed") || event.operation.hasSuffix("-refused") || event.operation.hasSuffix("-denied")
            || event.operation.hasSuffix("-throttled")
        metadata["message_id"] = .string(VaultMessageID.event)
        logger.log(level: failed ? .warning : .notice, "Vault service event.", metadata: metadata)
        return nil
    }
}
