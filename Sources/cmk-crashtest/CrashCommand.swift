import CMKAccounts
import CMKCore
import Foundation

/// The subcommands of `cmk-crashtest`.
enum CrashCommand {
    static func run(_ arguments: [String]) async throws -> Int32 {
        guard arguments.count >= 2 else { return usage() }
        let root = arguments[1]
        if arguments[0] == "rotate" {
            let version = try await CrashWorld.openVault(root: root).rotateKey(CrashWorld.keyReference())
            return emit(["version": version.id])
        }
        guard arguments.count == 3 else { return usage() }
        let driver = arguments[2]
        switch arguments[0] {
        case "setup":
            let world = try await CrashWorld.setUp(root: root, driver: driver)
            return emit(["objects": "\(CrashWorld.objectNames.count)", "version": try await world.currentVersion().id])
        case "rebind":
            let world = try CrashWorld(root: root, driver: driver)
            let result = try await world.executor.rebind(world.account, to: try await world.currentVersion())
            return emit(["changed": "\(result.changed)", "generation": "\(result.generation)"])
        case "read-all":
            let world = try CrashWorld(root: root, driver: driver)
            var reencrypted = 0
            for name in CrashWorld.objectNames {
                let (plaintext, outcome) = try await world.plane.get(world.account, name)
                guard plaintext == CrashWorld.content(of: name) else {
                    FileHandle.standardError.write(Data("object \(name) read back different content\n".utf8))
                    return 1
                }
                if outcome.reencrypted { reencrypted += 1 }
            }
            return emit(["reencrypted": "\(reencrypted)"])
        case "sweep":
            let world = try CrashWorld(root: root, driver: driver)
            let progress = try await world.plane.sweep(world.account)
            _ = emit(["reencrypted": "\(progress.reencrypted)", "failed": "\(progress.failed.count)"])
            return progress.failed.isEmpty ? 0 : 1
        case "verify":
            let summary = try await CrashWorld(root: root, driver: driver).verify()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
            return summary.ok ? 0 : 1
        default:
            return usage()
        }
    }

    private static func emit(_ fields: [String: String]) -> Int32 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: (try? encoder.encode(fields)) ?? Data(), as: UTF8.self))
        return 0
    }

    private static func usage() -> Int32 {
        FileHandle.standardError.write(Data("usage: cmk-crashtest setup|rebind|read-all|sweep|verify <root> <directory|sqlite|postgres>, or rotate <root>\n".utf8))
        return 64
    }
}
