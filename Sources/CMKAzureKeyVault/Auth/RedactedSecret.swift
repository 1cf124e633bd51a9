/// A bearer token or client secret in memory. It prints `<redacted>` in every form (description,
/// debug description, reflection, string interpolation), so it cannot reach a log or an error by
/// accident. The value is only read where it goes on the wire.
public struct RedactedSecret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) { self.value = value }

    /// The secret itself, for the one place it is sent.
    public func reveal() -> String { value }

    public var isEmpty: Bool { value.isEmpty }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "RedactedSecret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// An OAuth2 access token and when the provider stops using it.
public struct AccessToken: Sendable, Hashable, CustomStringConvertible {
    public var token: RedactedSecret
    /// Monotonic instant (``AzureRuntime/monotonicNow``) at which the token expires.
    public var expiresAt: Duration

    public init(token: RedactedSecret, expiresAt: Duration) {
        self.token = token
        self.expiresAt = expiresAt
    }

    public var description: String { "AccessToken(<redacted>, expires at \(expiresAt))" }
}
