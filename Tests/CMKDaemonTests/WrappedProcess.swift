import Foundation

/// Starts a program through a wrapper that execs it (`prlimit`, `unshare`), so the process id is
/// the program's own, with the daemon's environment rules (no systemd sockets) and its output
/// in `log`.
func startWrapped(_ wrapper: String, _ arguments: [String], log: String, environment extra: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: wrapper)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment.removeValue(forKey: "NOTIFY_SOCKET")
    environment.removeValue(forKey: "JOURNAL_STREAM")
    environment.merge(extra) { $1 }
    process.environment = environment
    FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    try? handle.close()  // the child has its own copy; this process keeps no descriptor for it
    return process
}
