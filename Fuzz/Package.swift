// swift-tools-version:6.1
import PackageDescription

// Fuzz targets for every parser of untrusted bytes (docs/testing/fuzzing.md). A separate package so that
// the main build and `make test` never see libFuzzer: `make fuzz` builds it with
// `--sanitize=fuzzer --sanitize=address` and a scratch path of its own (.build-fuzz).
// Each target is an executable whose entry point is libFuzzer's `LLVMFuzzerTestOneInput`; libFuzzer
// supplies `main`. The harnesses reach internal parsers with `@testable import` (debug builds are testable).

let fuzzTarget: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .unsafeFlags(["-parse-as-library"]),
]

let package = Package(
    name: "cmk-syncer-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "cmk-syncer", path: ".."),
        // NIOEmbedded (EmbeddedChannel) for the event receiver's pipeline; the version the root package resolved.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
    ],
    targets: [
        .target(name: "FuzzSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
        .executableTarget(name: "fuzz-envelope-header", dependencies: [.product(name: "CMKEnvelope", package: "cmk-syncer"), .product(name: "CMKCore", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-envelope-open", dependencies: [.product(name: "CMKEnvelope", package: "cmk-syncer"), .product(name: "CMKCore", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-keyring", dependencies: [.product(name: "CMKCore", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-configuration", dependencies: [.product(name: "CMKConfiguration", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-security-record", dependencies: [.product(name: "CMKAudit", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-azure-bodies", dependencies: [.product(name: "CMKAzureKeyVault", package: "cmk-syncer"), .product(name: "CMKCore", package: "cmk-syncer"), "FuzzSupport"], swiftSettings: fuzzTarget),
        // CMKVaultService's product also brings its internal modules (CMKIdentity, CMKEntra, CMKVaultLog), which are not products.
        .executableTarget(name: "fuzz-vault-requests", dependencies: [.product(name: "CMKVaultService", package: "cmk-syncer"), "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-local-vault", dependencies: [.product(name: "CMKLocalVault", package: "cmk-syncer"), .product(name: "CMKCore", package: "cmk-syncer"), "FuzzSupport"], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-pkcs11-record", dependencies: [.product(name: "CMKPKCS11", package: "cmk-syncer"), .product(name: "CMKCore", package: "cmk-syncer")], swiftSettings: fuzzTarget),
        // CMKDaemon's product brings CMKMetrics (LocalHTTPListener); CMKVaultService's EventPublisher writes the seeds.
        .executableTarget(name: "fuzz-event-receiver", dependencies: [
            .product(name: "CMKDaemon", package: "cmk-syncer"), .product(name: "CMKVaultService", package: "cmk-syncer"), "FuzzSupport",
            .product(name: "NIOEmbedded", package: "swift-nio"),
        ], swiftSettings: fuzzTarget),
        .executableTarget(name: "fuzz-vault-log", dependencies: [.product(name: "CMKVaultService", package: "cmk-syncer"), .product(name: "CMKTransparency", package: "cmk-syncer")], swiftSettings: fuzzTarget),
    ]
)
