import Foundation

/// The reconcile decision as a pure function: (key condition, account keyring, policy, now) → plan.
/// Executing the plan is somebody else's job (SPEC §5; STYLE "a pure core").
public enum Reconciler {
    /// Plans one account.
    /// - Parameters:
    ///   - condition: what the vault snapshot means (``KeyCondition/from(_:now:)``).
    ///   - versions: the versions the snapshot listed (present or deleted key), to spot disabled ones.
    ///   - keyring: the account's stored keyring, nil if it has none yet.
    ///   - keyringExpected: the account must have a keyring (it holds objects, or an earlier pass
    ///     saw one): without one it is blocked, never given a new keyring.
    public static func plan(_ condition: KeyCondition, versions: [KeyVersion], keyring: Keyring?,
                            keyringExpected: Bool = false, policy: ReconcilePolicy, now: Date) -> AccountPlan {
        if let suspension = keyring?.suspension, suspension.reason == .operatorRequest {
            return .blocked(.operatorSuspension)
        }
        if keyring == nil, keyringExpected { return .blocked(.keyringMissing) }
        switch condition {
        case .unreachable(let error), .accessDenied(let error):
            return .unreachable(error)

        case .missing:
            return .blocked(.keyMissing)

        case .pulled(let deleted):
            guard let keyring else { return .blocked(.pulledBeforeCreation) }
            if let suspension = keyring.suspension { return .staySuspended(suspension) }
            switch policy.suspend {
            case .immediate:
                return .suspend(reason: .keyPulled)
            case .afterCacheTTL:
                let due = deleted.deletedDate.addingTimeInterval(policy.cacheTTL.timeInterval)
                return now >= due ? .suspend(reason: .keyPulled) : .suspendLater(at: due)
            }

        case .usable(let target):
            guard let keyring else { return .create(target: target) }
            if let blocked = disabledInUse(keyring, versions: versions) { return blocked }
            let stale = keyring.deks.contains { $0.keyVersion != target.id }
            if keyring.suspension != nil { return .resume(rebindTo: stale ? target : nil) }
            return stale ? .rebind(target: target, from: keyring.referencedVersions) : .inSync

        case .currentUnusable(_, let refusal, let fallback):
            guard let keyring else {
                if let fallback { return .create(target: fallback) }
                return .blocked(.noUsableVersion(refusal))
            }
            if let blocked = disabledInUse(keyring, versions: versions) { return blocked }
            if keyring.suspension != nil { return .resume(rebindTo: nil) }
            return .keep(binding: keyring.binding ?? "", because: refusal)
        }
    }

    /// Versions that wrap DEKs of `keyring` but the key does not list (unknown), or lists disabled.
    static func disabledInUse(_ keyring: Keyring, versions: [KeyVersion]) -> AccountPlan? {
        let byID = Dictionary(versions.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let unknown = keyring.referencedVersions.filter { byID[$0] == nil }
        if !unknown.isEmpty { return .blocked(.versionsUnknown(unknown)) }
        let broken = keyring.referencedVersions.filter { byID[$0]?.canUnwrap != true }
        return broken.isEmpty ? nil : .blocked(.versionsDisabledInUse(broken))
    }
}
