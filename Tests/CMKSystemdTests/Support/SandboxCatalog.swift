import Foundation

extension SystemdSandbox {
    /// Compiles a catalog database from `catalogs` (our `.catalog` files) and the host's systemd
    /// catalogs, and installs it as the sandbox's /var/lib/systemd/catalog/database, so that
    /// `journalctl -x` inside explains our entries. Nothing on the host changes.
    func installCatalogs(_ catalogs: [String]) throws {
        let root = work.path + "/catalog-root"
        try FileManager.default.createDirectory(atPath: root + "/usr/lib/systemd/catalog", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/lib/systemd/catalog", withIntermediateDirectories: true)
        for catalog in catalogs {
            try FileManager.default.copyItem(atPath: catalog, toPath: root + "/usr/lib/systemd/catalog/" + (catalog as NSString).lastPathComponent)
        }
        for file in (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/systemd/catalog")) ?? [] where file.hasSuffix(".catalog") {
            try? FileManager.default.copyItem(atPath: "/usr/lib/systemd/catalog/" + file, toPath: root + "/usr/lib/systemd/catalog/" + file)
        }
        try Command.run("/usr/bin/journalctl", ["--root=\(root)", "--update-catalog"])
        try run("sh", "-c", "mkdir -p /var/lib/systemd/catalog && cp '\(root)/var/lib/systemd/catalog/database' /var/lib/systemd/catalog/")
    }
}
