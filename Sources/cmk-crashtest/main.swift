import Foundation

// cmk-crashtest: the child process of the crash-safety harness (Tests/CMKCrashTests).
//
//   cmk-crashtest setup    <root> <directory|sqlite|postgres>   master key, local vault, key, keyring, objects
//                          (postgres: CMK_CRASHTEST_POSTGRES and <root>/postgres.database, see CrashWorld.postgres)
//   cmk-crashtest rotate   <root>                      rotate the key in the local vault
//   cmk-crashtest rebind   <root> <driver>             rebind the account to the current version
//   cmk-crashtest read-all <root> <driver>             read every object (lazy re-encryption), check content
//   cmk-crashtest sweep    <root> <driver>             background sweep
//   cmk-crashtest verify   <root> <driver>             exit 0 only if nothing was lost; prints a JSON summary
//
// Exit status: 0 success, 1 verification failed, 2 error, 64 usage.
// Crash points are armed through CMK_CRASH_AT / CMK_CRASH_TRACE (see CMKCore.CrashPoints).

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    exit(try await CrashCommand.run(arguments))
} catch {
    FileHandle.standardError.write(Data("cmk-crashtest: \(error)\n".utf8))
    exit(2)
}
