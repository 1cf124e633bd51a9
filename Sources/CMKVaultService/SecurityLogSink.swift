import CMKVaultLog
import Foundation
import Logging

/// Writes every service event to the security log (a record, a Merkle leaf) and then to the next
/// sink (the journal). A record the log cannot write is reported in the journal with its
/// operation; the request itself goes on (``ServiceEventSink/record(_:)`` cannot fail).
public struct SecurityLogSink: ServiceEventSink {
    public let log: VaultSecurityLog
    let next: any ServiceEventSink
    let logger: Logger

    public init(log: VaultSecurityLog, next: any ServiceEventSink, logger: Logger) {
        self.log = log
        self.next = next
        self.logger = logger
    }

    public func record(_ event: ServiceEvent) {
        do {
            try log.append(SecurityLogEvent(operation: event.operation, actor: event.actor, role: event.role, address: event.address, details: event.details))
        } catch {
            logger.error("The security log could not record an event.", metadata: [
                "message_id": .string(VaultMessageID.recordFailed), "cmk_operation": .string(event.operation), "cmk_error": .string("\(error)"),
            ])
        }
        next.record(event)
    }
}
