/// A violated expectation in a conformance suite (vault or storage): names the check and what went wrong.
public struct ConformanceFailure: Error, CustomStringConvertible, Sendable {
    public let check: String
    public let message: String
    public init(check: String, message: String) {
        self.check = check
        self.message = message
    }
    public var description: String { "conformance check '\(check)' failed: \(message)" }
}
