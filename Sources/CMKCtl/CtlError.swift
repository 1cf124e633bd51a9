import CMKAudit
import CMKConfiguration
import CMKCore
import CMKHost

/// An error `cmkctl` reports itself: a sentence for the operator and the exit code scripts see.
public struct CtlError: Error, CustomStringConvertible {
    public let message: String
    public let exitCode: Int32

    public init(_ message: String, exitCode: Int32 = CMKExitCode.failure) {
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { message }

    /// The message and exit code for an error from the libraries; nil for argument-parser errors.
    static func classify(_ error: any Error) -> (String, Int32)? {
        switch error {
        case let error as ConfigurationError:
            return ("invalid configuration: \(error)", CMKExitCode.configuration)
        case let error as StorageError:
            if error.code == .suspended { return (error.reason, CMKExitCode.pulled) }
            if error.code == .notFound { return (error.reason, CMKExitCode.failure) }
            return ("\(error)", error.category == .configuration ? CMKExitCode.configuration : CMKExitCode.failure)
        case let error as VaultError:
            return ("\(error)", error.category == .revoked ? CMKExitCode.pulled : CMKExitCode.failure)
        case let error as AuditError:
            return ("\(error)", CMKExitCode.failure)
        case let error as any CategorizedError:
            return ("\(error)", error.category == .configuration ? CMKExitCode.configuration : CMKExitCode.failure)
        default:
            let type = String(reflecting: Swift.type(of: error))
            if type.hasPrefix("ArgumentParser.") { return nil }
            return ("\(error)", CMKExitCode.failure)
        }
    }
}
