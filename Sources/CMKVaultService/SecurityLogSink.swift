import CMKVaultLog
import Foundation
import Logging

/// Writes every service event to the security log (a record, a Merkle leaf) and, once it is
/// durable, to the next sink (the journal). A record the log cannot write is reported in the
/// journal (MESSAGE_ID ``VaultMessageID/recordFailed``, with its operation) and thrown as
/// ``EventNotRecorded``: the route then makes no change and hands out no token (fail closed).
public struct SecurityLogSink: ServiceEventSink {
    public let log: VaultSecurityLog
    let next: any ServiceEventSink
    let logger: Logger

    public init(log: VaultSecurityLog, next: any ServiceEventSink, logger: Logger) {
        self.log = log
        self.next = next
        self.logger = logger
    }

    @discardableResult
    public func record(_ event: ServiceEvent) async throws -> UInt64? {
        let record: SecurityLogRecord
        do {
            record = try await log.append(SecurityLogEvent(operation: event.operation, actor: event.actor, role: event.role, address: event.address,
                                                           details: event.details))
        } catch {
            var metadata: Logger.Metadata = [
                "message_id": .string(VaultMessageID.recordFailed), "cmk_operation": .string(event.operation),
                "cmk_address": .string(event.address), "cmk_error": .string("\(error)"),
            ]
            if let actor = event.actor { metadata["cmk_actor"] = .string(actor) }
            logger.error("The security log could not record an event.", metadata: metadata)
            throw EventNotRecorded(operation: event.operation,
                                   detail: "the security log cannot record \(event.operation) (\(Self.reason(error))); nothing was changed. The operator must free space on, or repair, the state directory's file system (see the service's journal)")
        }
        try await next.record(event)
        return record.index
    }

    /// A short reason for the answer: the log error's code, never its file path.
    static func reason(_ error: any Error) -> String {
        (error as? VaultLogError).map { "security-log \($0.code.rawValue)" } ?? "security-log failure"
    }
}
