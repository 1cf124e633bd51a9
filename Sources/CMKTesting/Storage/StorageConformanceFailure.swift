import CMKCore

/// A storage driver violated the ``StorageDriver`` contract in one ``StorageDriverConformance`` check.
public struct StorageConformanceFailure: Error, CustomStringConvertible, Sendable {
    /// The check that failed, for example `objects.ifRevision.conflict`.
    public let check: String
    /// What was expected and what happened instead.
    public let message: String

    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }

    public var description: String { "storage conformance check '\(check)' failed: \(message)" }
}
