import CMKConfiguration
import Foundation

// The configuration loaders (docs/configuration.md): the daemon's and cmk-vault's YAML (Yams, then
// the strict decoders), on the same text. Errors are expected; a crash, a hang or a leak is not.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let yaml = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let environment = ["CREDENTIALS_DIRECTORY": "/run/credentials/cmk-syncer.service", "HOME": "/root"]
    _ = try? SyncerConfiguration.parse(yaml: yaml, file: "/etc/cmk-syncer/cmk-syncer.yaml", environment: environment, workingDirectory: "/")
    _ = try? VaultServiceConfiguration.parse(yaml: yaml, file: "/etc/cmk-vault/cmk-vault.yaml", environment: environment, workingDirectory: "/")
    return 0
}
