import Foundation

/// One immutable version of a root key and its attributes (SPEC §3).
public struct KeyVersion: Hashable, Sendable, Codable {
    /// The provider's identifier for the version (Azure: the 32-hex-digit version in the `kid`).
    public var id: String
    /// When the version was created; the newest version is the key's current one.
    public var created: Date
    /// Disabled versions can neither wrap nor unwrap.
    public var enabled: Bool
    /// Before this instant the version must not wrap (it may still unwrap).
    public var notBefore: Date?
    /// From this instant on the version must not wrap (it may still unwrap: expiry is never revocation).
    public var expires: Date?

    public init(id: String, created: Date, enabled: Bool = true, notBefore: Date? = nil, expires: Date? = nil) {
        self.id = id
        self.created = created
        self.enabled = enabled
        self.notBefore = notBefore
        self.expires = expires
    }

    /// Why a version cannot wrap right now.
    public enum WrapRefusal: Hashable, Sendable, CustomStringConvertible {
        case disabled
        case notYetValid(notBefore: Date)
        case expired(expires: Date)

        public var description: String {
            switch self {
            case .disabled: return "disabled"
            case .notYetValid(let date): return "not valid before \(date.ISO8601Format())"
            case .expired(let date): return "expired at \(date.ISO8601Format())"
            }
        }
    }

    /// Whether the version may wrap at `now`: enabled and `now` inside [notBefore, expires).
    public func wrapRefusal(at now: Date) -> WrapRefusal? {
        if !enabled { return .disabled }
        if let notBefore, now < notBefore { return .notYetValid(notBefore: notBefore) }
        if let expires, now >= expires { return .expired(expires: expires) }
        return nil
    }

    /// Whether the version may wrap at `now`.
    public func canWrap(at now: Date) -> Bool { wrapRefusal(at: now) == nil }

    /// Whether the version may unwrap: only `enabled` matters. Expired and not-yet-valid
    /// versions still unwrap, so that expiry never locks data away.
    public var canUnwrap: Bool { enabled }
}
