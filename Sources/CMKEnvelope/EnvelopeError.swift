import CMKCore

/// Why an encrypted object was refused. Each failure has its own code; equality compares the code.
public struct EnvelopeError: CategorizedError, Hashable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: String, Hashable, Sendable {
            case notAnEnvelope = "envelope.not-an-envelope"
            case unsupportedVersion = "envelope.unsupported-version"
            case unsupportedSuite = "envelope.unsupported-suite"
            case malformedHeader = "envelope.malformed-header"
            case segmentSizeOutOfRange = "envelope.segment-size-out-of-range"
            case malformedSegment = "envelope.malformed-segment"
            case wrongAccount = "envelope.wrong-account"
            case wrongObject = "envelope.wrong-object"
            case wrongDEK = "envelope.wrong-dek"
            case truncated = "envelope.truncated"
            case trailingData = "envelope.trailing-data"
            case segmentOutOfOrder = "envelope.segment-out-of-order"
            case foreignSegment = "envelope.foreign-segment"
            case authenticationFailed = "envelope.authentication-failed"
            case invalidParameter = "envelope.invalid-parameter"
        }
        fileprivate let backing: Backing
        fileprivate init(_ backing: Backing) { self.backing = backing }

        /// The bytes do not start with the envelope magic.
        public static let notAnEnvelope = Code(.notAnEnvelope)
        /// The format version is not one this build reads.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// The cipher suite is not one this build reads.
        public static let unsupportedSuite = Code(.unsupportedSuite)
        /// The header's fields are out of range or inconsistent.
        public static let malformedHeader = Code(.malformedHeader)
        /// The header's segment size is outside 16 B ... 16 MiB.
        public static let segmentSizeOutOfRange = Code(.segmentSizeOutOfRange)
        /// A segment's frame fields are out of range.
        public static let malformedSegment = Code(.malformedSegment)
        /// The object belongs to another account.
        public static let wrongAccount = Code(.wrongAccount)
        /// The object was written under another object id.
        public static let wrongObject = Code(.wrongObject)
        /// The DEK offered is not the one the header names.
        public static let wrongDEK = Code(.wrongDEK)
        /// The object ends before its final segment.
        public static let truncated = Code(.truncated)
        /// Bytes follow the final segment.
        public static let trailingData = Code(.trailingData)
        /// A segment of this object appears at the wrong position (reordered or duplicated).
        public static let segmentOutOfOrder = Code(.segmentOutOfOrder)
        /// A segment was taken from another object.
        public static let foreignSegment = Code(.foreignSegment)
        /// A segment (or the header it authenticates) was modified, or the DEK is wrong.
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The caller passed an unusable parameter (segment size, id length).
        public static let invalidParameter = Code(.invalidParameter)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    /// Detail: names the segment, the ids found and expected. Never key material or plaintext.
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var codeName: String { code.description }
    public var category: ErrorCategory { code == .invalidParameter ? .configuration : .internal }
    public var description: String { "\(code): \(reason)" }

    public static func == (lhs: EnvelopeError, rhs: EnvelopeError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
