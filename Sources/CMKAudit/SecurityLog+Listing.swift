import Foundation

extension SecurityLog {
    /// What `cmkctl audit list --since` shows: the records from the first one dated at or after
    /// `since`, in chain order, and which of them are dated before `since` all the same.
    public struct Listing: Sendable {
        /// The records, oldest (in the chain) first.
        public var records: [SecurityRecord]
        /// The `seq` of each listed record dated before `since`: written after a record that is
        /// dated after it, so the clock was stepped back (`audit verify` warns about each).
        public var outOfOrder: Set<Int>
    }

    /// The records to list for `since` (all if nil): every record from the first one dated at or
    /// after `since` onwards, including later ones whose time is earlier (a clock stepped back),
    /// which ``records(since:)`` would leave out; those are named in ``Listing/outOfOrder``.
    /// Throws what ``records(since:)`` throws.
    public func listing(since: Date?) throws(AuditError) -> Listing {
        let all = try records(since: nil)
        guard let since, let start = all.firstIndex(where: { $0.time >= since }) else {
            return Listing(records: since == nil ? all : [], outOfOrder: [])
        }
        let listed = Array(all[start...])
        return Listing(records: listed, outOfOrder: Set(listed.filter { $0.time < since }.map(\.seq)))
    }
}
