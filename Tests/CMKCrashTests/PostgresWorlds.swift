import CMKTesting
import Foundation

/// Crash-test worlds of the postgres driver: the account lives in its own database on the test
/// process's ``PostgresServer``, named in `<root>/postgres.database`; copying a world copies its
/// directory (the local vault) and makes a new database from the original's as a template.
/// Other drivers' worlds are their directory alone.
enum Worlds {
    /// Creates the database of a world `cmk-crashtest setup` is about to build.
    static func prepare(_ root: String, driver: String) throws {
        guard driver == "postgres" else { return }
        let server = try server()
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let name = "crash_\(UInt32.random(in: .min ... .max))"
        try server.psql("CREATE DATABASE \(name) OWNER \(server.user)")
        try name.write(toFile: root + "/postgres.database", atomically: true, encoding: .utf8)
    }

    /// Copies a world: `cp -a`, and for postgres a new database from the source's.
    static func copy(_ source: String, to destination: String, driver: String) async throws {
        try await ChildProcess.copy(source, to: destination)
        guard driver == "postgres" else { return }
        let server = try server()
        let template = try String(contentsOfFile: source + "/postgres.database", encoding: .utf8)
        let name = "crash_\(UInt32.random(in: .min ... .max))"
        // The source's last client may still be disconnecting: a template must have no sessions.
        var attempt = 0
        while true {
            do {
                try server.psql("CREATE DATABASE \(name) TEMPLATE \(template) OWNER \(server.user)")
                break
            } catch {
                attempt += 1
                guard attempt < 50, "\(error)".contains("is being accessed by other users") else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try name.write(toFile: destination + "/postgres.database", atomically: true, encoding: .utf8)
    }

    /// The shared server, its address exported to the `cmk-crashtest` children.
    static func server() throws -> PostgresServer {
        let server = try PostgresServer.shared()
        setenv("CMK_CRASHTEST_POSTGRES", "\(server.socketDirectory)|\(server.port)|\(server.user)|\(server.passwordFile)", 1)
        return server
    }
}
