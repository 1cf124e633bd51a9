import Foundation

// `GET/PUT /keys/{name}/rotationpolicy` (Azure Key Vault's key rotation policy) and what the
// service's scheduler asks of a key's policy: is a rotation due, is a warning due
// (docs/vault-service.md, "Rotation policy").

extension Wire {
    struct PolicyTrigger: Codable {
        var timeAfterCreate: String?
        var timeBeforeExpiry: String?
    }

    struct PolicyAction: Codable {
        var type: String?
    }

    struct PolicyLifetimeAction: Codable {
        var trigger: PolicyTrigger?
        var action: PolicyAction?
    }

    struct PolicyAttributes: Codable {
        var expiryTime: String?
        var created: Int?
        var updated: Int?
    }

    /// The request and the answer (`id` and the dates only in answers; Azure's member order).
    struct RotationPolicyBody: Codable {
        var id: String?
        var lifetimeActions: [PolicyLifetimeAction]?
        var attributes: PolicyAttributes?
    }
}

/// An ISO 8601 duration as rotation policies write them (`P90D`, `P18M`, `P1Y10D`, `PT48H`, `P2W`),
/// applied in UTC on the Gregorian calendar (a month after Jan 31 is Feb 28/29).
public struct ISODuration: Sendable, Equatable {
    public var years = 0, months = 0, days = 0, hours = 0, minutes = 0, seconds = 0

    /// Nil unless `text` is `P[nY][nM][nW][nD][T[nH][nM][nS]]` with at least one component, each
    /// unit once and in that order.
    public init?(_ text: String) {
        guard text.hasPrefix("P"), text.count <= 40 else { return nil }
        var number = "", inTime = false, any = false
        var order = 0  // the position of the last unit seen, so units come once and in order
        for character in text.dropFirst() {
            if character == "T" {
                guard !inTime, number.isEmpty else { return nil }
                inTime = true
                order = max(order, 4)
                continue
            }
            if character.isASCII, character.isNumber {
                number.append(character)
                continue
            }
            guard !number.isEmpty, number.count <= 6, let value = Int(number) else { return nil }
            number = ""
            let units: [Character] = inTime ? ["H", "M", "S"] : ["Y", "M", "W", "D"]
            guard let index = units.firstIndex(of: character) else { return nil }
            let position = (inTime ? 5 : 0) + index
            guard position >= order else { return nil }
            order = position + 1
            switch (inTime, character) {
            case (false, "Y"): years = value
            case (false, "M"): months = value
            case (false, "W"): days += 7 * value
            case (false, "D"): days += value
            case (true, "H"): hours = value
            case (true, "M"): minutes = value
            default: seconds = value
            }
            any = true
        }
        guard number.isEmpty, any, !(inTime && order == 4) else { return nil }
    }

    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    private func shifted(_ time: Int, by sign: Int) -> Int {
        let components = DateComponents(year: sign * years, month: sign * months, day: sign * days, hour: sign * hours,
                                        minute: sign * minutes, second: sign * seconds)
        let date = Self.calendar.date(byAdding: components, to: Date(timeIntervalSince1970: TimeInterval(time)))
        return date.map { Int($0.timeIntervalSince1970.rounded(.down)) } ?? (sign > 0 ? Int.max : Int.min)
    }

    /// `time` (seconds since 1970) plus this duration.
    public func after(_ time: Int) -> Int { shifted(time, by: 1) }
    /// `time` minus this duration.
    public func before(_ time: Int) -> Int { shifted(time, by: -1) }
    /// Its length in seconds when applied at `time`.
    func length(at time: Int) -> Int { after(time) - time }
}

/// What a key's policy asks of the service now (``KeyVaultAPI/dueLifecycleActions()``).
public struct LifecycleAction: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Rotate: the trigger that made it due (`timeAfterCreate P90D`, `timeBeforeExpiry P30D`).
        case rotate(trigger: String)
        /// The current version is within the Notify window (or 30 days) of its expiry.
        case nearExpiry
        /// The current version has expired.
        case expired
    }

    public var kind: Kind
    /// The key's name as the customer spelled it.
    public var keyName: String
    /// The current version, the one the action is about.
    public var version: String
    public var notBefore: Int?
    public var expires: Int?
}

extension KeyVaultAPI {
    /// Azure's bounds for a policy: every trigger at least 7 days, `expiryTime` at least 28 days
    /// (and at most 100 years, ours), a rotation at least 7 days before the expiry it sets.
    static let minimumTrigger = 7 * 86_400
    static let minimumExpiry = 28 * 86_400
    static let maximumExpiry = ISODuration("P100Y")!
    /// The warning window before a version's expiry when the policy has no Notify action.
    static let defaultNotifyWindow = ISODuration("P30D")!

    /// `GET /keys/{name}/rotationpolicy`: the key's policy, or Azure's default for a key without one
    /// (Notify 30 days before expiry, no attributes).
    func getRotationPolicy(_ name: String) throws -> ServerResponse {
        guard let key = try read(name).live else { throw KeyVaultError.keyNotFound(name) }
        return .json(200, policyBody(key.name, key.rotationPolicy))
    }

    /// `PUT /keys/{name}/rotationpolicy`: replaces the policy (its creation date kept); a policy
    /// without a Notify action gets Azure's default one, an empty list is the default policy.
    func putRotationPolicy(_ name: String, body: Data) throws -> ServerResponse {
        let request = try decode(Wire.RotationPolicyBody.self, body)
        let now = now
        let expiryTime = request.attributes?.expiryTime
        var expiry: ISODuration?
        if let expiryTime {
            guard let duration = ISODuration(expiryTime) else {
                throw KeyVaultError.badParameter("Invalid value for 'attributes.expiryTime': '\(expiryTime.prefix(40))' is not an ISO 8601 duration (e.g. P90D, P18M, P1Y).")
            }
            let length = duration.length(at: now)
            guard length >= Self.minimumExpiry, length <= Self.maximumExpiry.length(at: now) else {
                throw KeyVaultError.badParameter("Invalid value for 'attributes.expiryTime': '\(expiryTime)' must be at least 28 days (P28D) and at most 100 years.")
            }
            expiry = duration
        }
        var actions = try (request.lifetimeActions ?? []).enumerated().map { index, action in
            try validLifetimeAction(action, at: index, expiry: expiry, now: now)
        }
        for type in [RotationPolicy.ActionType.rotate, .notify] where actions.filter({ $0.type == type }).count > 1 {
            throw KeyVaultError.badParameter("Invalid value for 'lifetimeActions': a policy has at most one \(type.rawValue) action.")
        }
        if !actions.contains(where: { $0.type == .notify }) { actions.append(RotationPolicy.defaultNotify) }
        let policy: RotationPolicy = try entry(name) { entry in
            guard var key = entry.live else { throw KeyVaultError.keyNotFound(name) }
            let policy = RotationPolicy(lifetimeActions: actions, expiryTime: expiryTime, created: key.rotationPolicy?.created ?? now, updated: now)
            key.rotationPolicy = policy
            entry.live = key
            return policy
        }
        return .json(200, policyBody(name, policy))
    }

    private func validLifetimeAction(_ action: Wire.PolicyLifetimeAction, at index: Int, expiry: ISODuration?, now: Int) throws -> RotationPolicy.LifetimeAction {
        let field = "lifetimeActions[\(index)]"
        guard let typeName = action.action?.type else { throw KeyVaultError.badParameter("Property '\(field).action.type' is required; accepted values: Rotate, Notify.") }
        guard let type = [RotationPolicy.ActionType.rotate, .notify].first(where: { $0.rawValue.caseInsensitiveCompare(typeName) == .orderedSame }) else {
            throw KeyVaultError.badParameter("Invalid value for '\(field).action.type': '\(typeName.prefix(40))'; accepted values: Rotate, Notify.")
        }
        let trigger = action.trigger
        guard (trigger?.timeAfterCreate == nil) != (trigger?.timeBeforeExpiry == nil) else {
            throw KeyVaultError.badParameter("Invalid value for '\(field).trigger': exactly one of timeAfterCreate and timeBeforeExpiry must be set.")
        }
        if type == .notify, trigger?.timeAfterCreate != nil {
            throw KeyVaultError.badParameter("Invalid value for '\(field).trigger': a Notify action takes timeBeforeExpiry, not timeAfterCreate.")
        }
        let (member, text) = trigger?.timeAfterCreate.map { ("timeAfterCreate", $0) } ?? ("timeBeforeExpiry", trigger?.timeBeforeExpiry ?? "")
        guard let duration = ISODuration(text) else {
            throw KeyVaultError.badParameter("Invalid value for '\(field).trigger.\(member)': '\(text.prefix(40))' is not an ISO 8601 duration (e.g. P30D, P18M).")
        }
        guard duration.length(at: now) >= Self.minimumTrigger else {
            throw KeyVaultError.badParameter("Invalid value for '\(field).trigger.\(member)': '\(text)' must be at least 7 days (P7D).")
        }
        if type == .rotate, member == "timeBeforeExpiry", expiry == nil {
            throw KeyVaultError.badParameter("Invalid value for '\(field).trigger.timeBeforeExpiry': a Rotate action before expiry needs 'attributes.expiryTime'.")
        }
        if let expiry {
            let limit = expiry.length(at: now) - Self.minimumTrigger
            if duration.length(at: now) > limit {
                throw KeyVaultError.badParameter(
                    "Invalid value for '\(field).trigger.\(member)': '\(text)' must leave at least 7 days of the 'attributes.expiryTime' of a new version.")
            }
        }
        return member == "timeAfterCreate" ? .init(type: type, timeAfterCreate: text) : .init(type: type, timeBeforeExpiry: text)
    }

    private func policyBody(_ name: String, _ policy: RotationPolicy?) -> Wire.RotationPolicyBody {
        let actions = (policy?.lifetimeActions ?? [RotationPolicy.defaultNotify]).map { action in
            Wire.PolicyLifetimeAction(trigger: .init(timeAfterCreate: action.timeAfterCreate, timeBeforeExpiry: action.timeBeforeExpiry),
                                      action: .init(type: action.type.rawValue))
        }
        return Wire.RotationPolicyBody(id: "\(vaultURL)/keys/\(name)/rotationpolicy", lifetimeActions: actions,
                                       attributes: .init(expiryTime: policy?.expiryTime, created: policy?.created, updated: policy?.updated))
    }

    // MARK: - The scheduler's questions

    /// For every live key, what its policy (or the default one) asks now: a rotation when one is
    /// due (now ≥ the current version's creation + timeAfterCreate, or ≥ its expiry −
    /// timeBeforeExpiry), else the warning not yet given for the current version. Due-ness comes
    /// from the current version only, so once a rotation's new version is durable the key is no
    /// longer due: a rotation is never done twice.
    public func dueLifecycleActions() throws -> [LifecycleAction] {
        let now = now
        return try store.entries().compactMap { $0.live.flatMap { Self.lifecycleAction(for: $0, now: now) } }
    }

    static func lifecycleAction(for key: KeyRecord, now: Int) -> LifecycleAction? {
        let latest = key.latest
        func action(_ kind: LifecycleAction.Kind) -> LifecycleAction {
            LifecycleAction(kind: kind, keyName: key.name, version: latest.version, notBefore: latest.notBefore, expires: latest.expires)
        }
        let actions = key.rotationPolicy?.lifetimeActions ?? [RotationPolicy.defaultNotify]
        for rotate in actions where rotate.type == .rotate {
            if let text = rotate.timeAfterCreate, let duration = ISODuration(text), now >= duration.after(latest.created) {
                return action(.rotate(trigger: "timeAfterCreate " + text))
            }
            if let text = rotate.timeBeforeExpiry, let duration = ISODuration(text), let expires = latest.expires, now >= duration.before(expires) {
                return action(.rotate(trigger: "timeBeforeExpiry " + text))
            }
        }
        guard let expires = latest.expires else { return nil }
        if now >= expires { return key.expiredWarned == latest.version ? nil : action(.expired) }
        let window = actions.first { $0.type == .notify }?.timeBeforeExpiry.flatMap(ISODuration.init) ?? Self.defaultNotifyWindow
        guard now >= window.before(expires), key.nearExpiryWarned != latest.version else { return nil }
        return action(.nearExpiry)
    }

    /// Remembers in the key's record that the warning `action` was given for its version (kept
    /// across restarts); nothing when the key has rotated or gone since.
    public func markWarned(_ action: LifecycleAction) throws {
        try entry(action.keyName) { entry in
            guard entry.live?.latest.version == action.version else { return }
            switch action.kind {
            case .nearExpiry: entry.live?.nearExpiryWarned = action.version
            case .expired: entry.live?.expiredWarned = action.version
            case .rotate: break
            }
        }
    }
}
