import CMKCore
import NIOSSL
import PostgresNIO
import _ConnectionPoolModule

/// Turns PostgresNIO's errors into the ``StorageError`` codes every driver uses. Messages name the
/// operation, the server (never the password) and the SQLSTATE; never a bound value.
enum PostgresErrors {
    static func mapping<T>(_ what: String, server: String, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch { throw storageError(error, what, server: server) }
    }

    static func storageError(_ error: any Error, _ what: String, server: String) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? ConnectionPoolError {
            return StorageError(.io, "\(what) failed: no connection to \(server) (pool: \(error))", underlying: error)
        }
        if let cause = tlsCause(error) {
            return StorageError(.misconfigured, "\(what) failed: TLS with \(server) failed: \(cause); check postgres.tls and postgres.ca-file (docs/storage.md)",
                                underlying: SafeDescription(text: cause))
        }
        guard let error = error as? PSQLError else {
            if error is CancellationError { return StorageError(.io, "\(what) was cancelled") }
            return StorageError(.io, "\(what) failed on \(server)", underlying: error)
        }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else {
            return StorageError(.io, "\(what) failed: connection to \(server) lost or refused (\(error.code))", underlying: SafeDescription(text: "\(error.code)"))
        }
        let message = error.serverInfo?[.message] ?? ""
        let reason = "\(what) failed on \(server): SQLSTATE \(state) \(message)"
        switch state {
        case "57014":
            return StorageError(.io, "\(what) failed on \(server): the statement ran longer than the statement timeout (SQLSTATE 57014)")
        case "28000" where message.contains("no encryption"):
            return StorageError(.misconfigured, reason + "; the server accepts this connection only over TLS (pg_hba.conf hostssl): set postgres.tls to verify-full (or require)")
        case "28000", "28P01", "42501":
            return StorageError(.permissions, reason + "; check the user, its password file and its grants (docs/storage.md)")
        case "3D000":
            return StorageError(.misconfigured, reason + "; create the database (docs/storage.md, PostgreSQL driver)")
        case "40001", "40P01", "23505":
            return StorageError(.conflict, reason)
        case _ where state.hasPrefix("XX") || state == "22P03" || state == "22021":
            return StorageError(.corrupt, reason)
        default:
            return StorageError(.io, reason)
        }
    }
}

extension PostgresErrors {
    /// Why a TLS connection failed, when it did (NIOSSL's and BoringSSL's own descriptions: the
    /// verification failure, the host name not in the certificate; never key material), or nil.
    static func tlsCause(_ error: any Error) -> String? {
        var next: (any Error)? = error
        for _ in 0..<4 {
            guard let current = next else { return nil }
            switch current {
            case let tls as NIOSSLError: return "\(tls)"
            case let tls as NIOSSLExtraError: return "\(tls)"
            case let tls as BoringSSLError: return "\(tls)"
            case let psql as PSQLError:
                if psql.code == .sslUnsupported { return "the server does not offer TLS (ssl = off)" }
                next = psql.underlying
            default: return nil
            }
        }
        return nil
    }
}

/// An underlying error that describes itself by a fixed text (PSQLError's own description is generic).
struct SafeDescription: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}
