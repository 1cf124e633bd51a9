import CMKAccounts
import CMKCore

extension SyncPass {
    /// Names, in each account's report, the daemon that last handled it (``AccountReport/handledBy``).
    ///
    /// An account this pass wrote, or left to a lease holder, already names one. An account only
    /// this daemon serves (no leases) was handled by this daemon whenever the pass reached it. For
    /// an account in shared storage that needed no write, the lease table says who last rebound
    /// it: one query per lease store and pass, never a write; when that query fails the previous
    /// report's name stays.
    func fillHandlers(_ outcomes: inout [AccountResult], previous: SyncReport?) async {
        let earlier = Dictionary((previous?.accounts ?? []).compactMap { a in a.handledBy.map { (a.name, $0) } }, uniquingKeysWith: { a, _ in a })
        let byName = Dictionary(accounts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var stores: [ObjectIdentifier: (leases: any RebindLeases, accounts: [String])] = [:]
        for outcome in outcomes where outcome.report.handledBy == nil {
            guard let leases = byName[outcome.report.name]?.leases else { continue }
            stores[ObjectIdentifier(leases), default: (leases, [])].accounts.append(outcome.report.name)
        }
        var found: [String: String] = [:]
        for (leases, names) in stores.values {
            if let holders = try? await leases.lastHolders(of: names) { found.merge(holders) { a, _ in a } }
        }
        for index in outcomes.indices where outcomes[index].report.handledBy == nil {
            let name = outcomes[index].report.name
            if byName[name]?.leases == nil, outcomes[index].report.outcome.code != .notReached {
                outcomes[index].report.handledBy = settings.instance.name
            } else {
                outcomes[index].report.handledBy = found[name] ?? earlier[name]
            }
        }
    }
}
