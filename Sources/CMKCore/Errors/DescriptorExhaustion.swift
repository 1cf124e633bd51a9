import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failure because this process (EMFILE) or the whole host (ENFILE) has no file descriptor left.
/// It is a local problem: the vault, the database and the file concerned are fine, so errors that
/// carry it say so instead of blaming them (docs/systemd.md, "File descriptors").
public enum DescriptorExhaustion {
    /// What an operator does about it, for error messages.
    public static let remedy = "this host ran out of file descriptors (Too many open files), a local limit, not the vault or the storage: "
        + "raise LimitNOFILE= of the service or lower CMK_SQLITE_OPEN_DATABASES (docs/systemd.md)"

    /// Whether `code` is EMFILE or ENFILE.
    public static func isExhaustion(_ code: Int32) -> Bool { code == EMFILE || code == ENFILE }

    /// Whether `error`, or an error it wraps, is a descriptor shortage: a ``SystemFileError`` or
    /// `POSIXError` with EMFILE/ENFILE, or a ``VaultError``/``StorageError`` whose code says so or
    /// whose underlying error is one.
    public static func isPresent(in error: (any Error)?) -> Bool {
        var next = error
        for _ in 0..<8 {
            switch next {
            case let error as SystemFileError: return isExhaustion(error.code)
            case let error as POSIXError: return isExhaustion(error.code.rawValue)
            case let error as VaultError:
                if error.code == .descriptorsExhausted { return true }
                next = error.underlying
            case let error as StorageError: next = error.underlying
            case let error as NSError where error.domain == NSPOSIXErrorDomain: return isExhaustion(Int32(error.code))
            default: return false
            }
        }
        return false
    }
}
