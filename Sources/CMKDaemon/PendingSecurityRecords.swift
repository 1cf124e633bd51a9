import CMKAudit
import Foundation
import Synchronization

/// Security-log records the daemon could not append (a full disk, a log that cannot be written),
/// kept in memory, in order, until the log takes them again (docs/security-log.md, "Records that
/// wait"). At most ``capacity`` are kept; beyond that the oldest are given up and counted, and the
/// next flush first writes one `log-gap` record saying how many of which events were lost between
/// which times (the journal has each of them). Records still waiting when the daemon exits are
/// lost the same way, with an error in the journal.
final class PendingSecurityRecords: Sendable {
    /// How many records wait at most.
    static let defaultCapacity = 1000

    private struct Waiting {
        var entry: SecurityLogEntry
        var time: Date
    }

    private struct Lost {
        var count = 0
        var first: Date
        var last: Date
        var events: [SecurityEvent: Int] = [:]
    }

    private struct State {
        var waiting: [Waiting] = []
        var lost: Lost?
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int = PendingSecurityRecords.defaultCapacity) {
        precondition(capacity >= 1, "PendingSecurityRecords needs room for one record")
        self.capacity = capacity
    }

    /// Records waiting, lost ones included (those become one `log-gap` record).
    var count: Int { state.withLock { $0.waiting.count + ($0.lost?.count ?? 0) } }

    /// Keeps `entry`, which could not be appended at `time`.
    func keep(_ entry: SecurityLogEntry, at time: Date) {
        state.withLock { state in
            state.waiting.append(Waiting(entry: entry, time: time))
            while state.waiting.count > capacity {
                let dropped = state.waiting.removeFirst()
                var lost = state.lost ?? Lost(first: dropped.time, last: dropped.time)
                lost.count += 1
                lost.first = min(lost.first, dropped.time)
                lost.last = max(lost.last, dropped.time)
                lost.events[dropped.entry.event, default: 0] += 1
                state.lost = lost
            }
        }
    }

    /// Appends the `log-gap` record (if records were lost) and then every waiting record, in
    /// order, each with `details["occurred"]`, the time it could not be written. Stops at the
    /// first failure and throws it; what was appended is no longer waiting. Returns how many
    /// records were appended; `appended` hears of each.
    @discardableResult
    func flush(to log: SecurityLog, appended: (SecurityLogEntry) -> Void = { _ in }) throws(AuditError) -> Int {
        try state.withLock { (state) throws(AuditError) -> Int in
            var written = 0
            if let lost = state.lost {
                try log.append(Self.gapEntry(lost, capacity: capacity))
                state.lost = nil
                written += 1
            }
            while let next = state.waiting.first {
                var entry = next.entry
                entry.details["occurred"] = next.time.ISO8601Format()
                try log.append(entry)
                state.waiting.removeFirst()
                appended(entry)
                written += 1
            }
            return written
        }
    }

    /// The `log-gap` record for records given up.
    private static func gapEntry(_ lost: Lost, capacity: Int) -> SecurityLogEntry {
        let events = lost.events.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue):\($0.value)" }.joined(separator: ",")
        return SecurityLogEntry(event: .logGap, details: [
            "lost": String(lost.count),
            "first_lost": lost.first.ISO8601Format(),
            "last_lost": lost.last.ISO8601Format(),
            "events": String(events.prefix(SecurityLogEntry.maximumDetailLength)),
            "reason": "more records waited for the security log than the daemon keeps (\(capacity)); the journal has each",
        ])
    }
}
