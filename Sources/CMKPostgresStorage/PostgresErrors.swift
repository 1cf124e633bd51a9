import CMKCore
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

/// An underlying error that describes itself by a fixed text (PSQLError's own description is generic).
struct SafeDescription: Error, CustomStringConvertible {
    let text: String
    var description: String { text }
}
