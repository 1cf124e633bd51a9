import CMKCore
import Foundation

/// What the last pass acted on, as the key-state probe compares it (issue 22): the vault snapshot
/// the pass started with (nil when it could not get one), when the pass took it, and the key
/// versions the accounts' keyrings reference after the pass.
public struct ProbeBaseline: Hashable, Sendable {
    public var snapshot: KeySnapshot?
    public var taken: Date
    public var referenced: Set<String>

    public init(snapshot: KeySnapshot?, taken: Date, referenced: Set<String>) {
        self.snapshot = snapshot
        self.taken = taken
        self.referenced = referenced
    }

    /// The baseline of a finished pass: its snapshot, its start and every version its accounts reference.
    public init(snapshot: KeySnapshot?, report: SyncReport) {
        self.init(snapshot: snapshot, taken: report.started,
                  referenced: Set(report.accounts.flatMap { $0.versions + ($0.binding.map { [$0] } ?? []) }))
    }
}

/// A change the probe saw that a pass would act on: each starts a pass at once.
public enum ProbeChange: Hashable, Sendable, CustomStringConvertible {
    /// The key has a new current version (a rotation): accounts rebind.
    case newCurrentVersion(String)
    /// A version the accounts reference (or the current one) was disabled.
    case versionDisabled(String)
    /// A version the accounts reference (or the current one) was enabled again.
    case versionEnabled(String)
    /// A version the accounts reference (or the current one) expired since the pass.
    case versionExpired(String)
    /// A version the accounts reference (or the current one) is no longer listed.
    case versionGone(String)
    /// The key was soft-deleted (pulled).
    case keyDeleted
    /// The key was purged or is missing.
    case keyMissing
    /// The key is back (recovered after a pull, or present again after missing).
    case keyRecovered
    /// The last pass could not read the key at all (outage, refused); now the vault answers.
    case vaultAnswersAgain

    /// A value-free code for the journal and the security log.
    public var code: String {
        switch self {
        case .newCurrentVersion: return "new-current-version"
        case .versionDisabled: return "version-disabled"
        case .versionEnabled: return "version-enabled"
        case .versionExpired: return "version-expired"
        case .versionGone: return "version-gone"
        case .keyDeleted: return "key-deleted"
        case .keyMissing: return "key-missing"
        case .keyRecovered: return "key-recovered"
        case .vaultAnswersAgain: return "vault-answers-again"
        }
    }

    /// The version concerned, when there is one.
    public var version: String? {
        switch self {
        case .newCurrentVersion(let id), .versionDisabled(let id), .versionEnabled(let id), .versionExpired(let id), .versionGone(let id):
            return id
        case .keyDeleted, .keyMissing, .keyRecovered, .vaultAnswersAgain:
            return nil
        }
    }

    public var description: String { version.map { "\(code) \($0)" } ?? code }
}

/// What one probe concluded. Only ``changed(_:)`` starts a pass; a fault never acts.
public enum ProbeVerdict: Hashable, Sendable {
    /// Nothing a pass would act on changed.
    case unchanged
    /// These changes (never empty) start a pass.
    case changed([ProbeChange])
    /// The probe got no snapshot: counted, never acted on (no pass, no suspension).
    case fault(ProbeFault)

    /// Compares the probe's result with the snapshot the last pass acted on (a pure function).
    public static func compare(_ result: Result<KeySnapshot, VaultError>, with baseline: ProbeBaseline, now: Date) -> ProbeVerdict {
        switch result {
        case .failure(let error):
            return .fault(ProbeFault(error))
        case .success(let snapshot):
            let changes = Self.changes(from: baseline, to: snapshot, now: now)
            return changes.isEmpty ? .unchanged : .changed(changes)
        }
    }

    static func changes(from baseline: ProbeBaseline, to snapshot: KeySnapshot, now: Date) -> [ProbeChange] {
        switch (baseline.snapshot, snapshot) {
        case (nil, _):
            return [.vaultAnswersAgain]
        case (.present, .deleted), (.missing, .deleted):
            return [.keyDeleted]
        case (.present, .missing), (.deleted, .missing):
            return [.keyMissing]
        case (.deleted, .present), (.missing, .present):
            return [.keyRecovered]
        case (.deleted, .deleted), (.missing, .missing):
            return []
        case (.present(let before), .present(let after)):
            return versionChanges(before, after, baseline: baseline, now: now)
        }
    }

    /// The versions a pass acts on: the referenced ones and the current one, before and after.
    static func versionChanges(_ before: KeyState, _ after: KeyState, baseline: ProbeBaseline, now: Date) -> [ProbeChange] {
        var changes: [ProbeChange] = []
        if let current = after.current?.id, current != before.current?.id { changes.append(.newCurrentVersion(current)) }
        let watched = baseline.referenced.union([before.current?.id].compactMap { $0 })
        for id in watched.sorted() {
            guard let old = before.version(id) else { continue }
            guard let new = after.version(id) else {
                changes.append(.versionGone(id))
                continue
            }
            if old.enabled, !new.enabled { changes.append(.versionDisabled(id)) }
            if !old.enabled, new.enabled { changes.append(.versionEnabled(id)) }
            if new.enabled, case .expired = new.wrapRefusal(at: now), old.wrapRefusal(at: baseline.taken).map(Self.isExpiry) != true {
                changes.append(.versionExpired(id))
            }
        }
        return changes
    }

    private static func isExpiry(_ refusal: KeyVersion.WrapRefusal) -> Bool {
        if case .expired = refusal { return true }
        return false
    }
}

/// Why a probe got no snapshot: the kinds counted apart in `cmkctl status`.
public struct ProbeFault: Hashable, Sendable {
    /// The vault error's value-free code (`vault.throttled`, `vault.unavailable`, `vault.unauthorized`, …).
    public var code: String
    /// The vault's `Retry-After`, when it gave one: the next probe waits at least this long.
    public var retryAfter: Duration?

    public init(_ error: VaultError) {
        code = error.codeName
        retryAfter = error.retryAfter
    }
}
