// swift-tools-version:6.1
import PackageDescription

// cmk-syncer: keeps storage accounts encrypted under the customer's root key.
//
// Layout (see docs/architecture.md):
//   CMKCore        pure domain: keys, versions, snapshots, keyrings, errors, the KeyVault contract
//   CMKEnvelope    envelope encryption: DEK wrapping (RSA-OAEP-256), segmented AES-256-GCM objects, DEK cache
//   CLibcrypto     the system's OpenSSL libcrypto, for the RSA-OAEP-256 private operation only
//   CMKLocalVault  the embedded default vault provider (a directory, private keys sealed at rest)
//   CMKAzureKeyVault  the Azure Key Vault provider (keys REST API over HTTPS, OAuth2/managed identity)
//   CPKCS11, CMKPKCS11  the PKCS#11 provider (an HSM's module, dlopened; AES-256 root keys, RFC 5649 key wrap)
//   CMKTesting     in-memory vault, manual clock, the KeyVault conformance suite
//   CMKTestingHTTP what tests and cmk-bench share to reach the test servers: an HTTPS client trusting a test CA, a host's Azure-provider section
//   CMKAzureTestServer  an Azure Key Vault emulator (keys REST API, token endpoint, IMDS, faults) over TLS for tests

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "cmk-syncer",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CMKCore", targets: ["CMKCore"]),
        .library(name: "CMKEnvelope", targets: ["CMKEnvelope"]),
        .library(name: "CMKLocalVault", targets: ["CMKLocalVault"]),
        // For the fuzz package (Fuzz/): the PKCS#11 key record's parser.
        .library(name: "CMKPKCS11", targets: ["CMKPKCS11"]),
        .library(name: "CMKAzureKeyVault", targets: ["CMKAzureKeyVault"]),
        .library(name: "CMKTesting", targets: ["CMKTesting"]),
        .library(name: "CMKAzureTestServer", targets: ["CMKAzureTestServer"]),
        .library(name: "CMKKeyVaultAPI", targets: ["CMKKeyVaultAPI"]),
        .library(name: "CMKAccounts", targets: ["CMKAccounts"]),
        .library(name: "CMKSyncer", targets: ["CMKSyncer"]),
        .library(name: "CMKHost", targets: ["CMKHost"]),
        .library(name: "CMKDaemon", targets: ["CMKDaemon"]),
        .executable(name: "cmk-syncer", targets: ["cmk-syncer"]),
        .library(name: "CMKConfiguration", targets: ["CMKConfiguration"]),
        .library(name: "CMKAudit", targets: ["CMKAudit"]),
        .library(name: "CMKDirectoryStorage", targets: ["CMKDirectoryStorage"]),
        .library(name: "CMKSQLiteStorage", targets: ["CMKSQLiteStorage"]),
        .library(name: "CMKIdentity", targets: ["CMKIdentity"]),
        .executable(name: "cmkctl", targets: ["cmkctl"]),
        .library(name: "CMKVaultService", targets: ["CMKVaultService"]),
        .executable(name: "cmk-vault", targets: ["cmk-vault"]),
        .library(name: "CMKTransparency", targets: ["CMKTransparency"]),
        // Test support: a PKCS#11 module that forwards to a real one and injects CKR_ faults (Tests/CMKPKCS11Tests).
        .library(name: "CPKCS11FaultModule", type: .dynamic, targets: ["CPKCS11FaultModule"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // cmk-vault's HTTP server (its swift-configuration support is not used).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // The postgres storage driver (CMKPostgresStorage): PostgresNIO only, no postgres-kit or fluent.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // The daemon's /metrics (CMKMetrics): swift-metrics' API, exported by swift-prometheus; cmkctl links neither CMKMetrics nor Prometheus.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "CMKCore",
            dependencies: ["CMalloc", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "CMKEnvelope",
            dependencies: [
                "CMKCore", "CLibcrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CMKLocalVault",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKKeyVaultAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // The PKCS#11 provider (issue 18): the module named in vault.pkcs11.module is dlopened, never linked.
        .systemLibrary(name: "CPKCS11"),
        .target(
            name: "CMKPKCS11",
            dependencies: ["CMKCore", "CPKCS11", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The fault-injecting module the PKCS#11 tests load as vault.pkcs11.module (include/cmk_pkcs11_fault.h).
        .target(name: "CPKCS11FaultModule"),
        .target(
            name: "CMKAzureKeyVault",
            dependencies: [
                "CMKCore", "CMKEnvelope",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CMKTesting",
            dependencies: [
                "CMKCore", "CMKEnvelope",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        // What the tests and cmk-bench share to reach cmk-vault and the Azure test server (AsyncHTTPClient):
        // linked by test targets and cmk-bench only, never by cmk-syncer, cmkctl or cmk-vault.
        .target(
            name: "CMKTestingHTTP",
            dependencies: [
                "CMKAzureTestServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // The keys API of Azure Key Vault over a key store (docs/testing/azure-test-server.md).
        .target(
            name: "CMKKeyVaultAPI",
            dependencies: [
                "CMKCore", "CMKEntra",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CMKAzureTestServer",
            dependencies: [
                "CMKCore", "CMKEntra", "CMKKeyVaultAPI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(name: "CMKAccounts", dependencies: ["CMKCore", "CMKEnvelope"], swiftSettings: strict),
        .target(name: "CMKSyncer", dependencies: ["CMKCore", "CMKEnvelope", "CMKAccounts"], swiftSettings: strict),
        // The unwrap (RSA private operation) of the local vault runs in the system's OpenSSL 3
        // libcrypto: about 2.4x BoringSSL's speed on CPUs with AVX-512 IFMA (docs/performance.md).
        .systemLibrary(name: "CLibcrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // glibc's mallopt and malloc_trim (the daemon's heap policy, ProcessMemory in CMKCore).
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(
            name: "CMKSystemd",
            dependencies: ["CSystemd", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "CMKDaemon",
            dependencies: [
                "CMKHost", "CMKCore", "CMKEnvelope", "CMKAccounts", "CMKSyncer", "CMKConfiguration", "CMKAudit", "CMKLocalVault", "CMKAzureKeyVault",
                "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKPostgresStorage", "CMKSystemd", "CMKMetrics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // The key event receiver (EventReceiver): HTTP/1.1 on SwiftNIO, no server framework.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The Prometheus metrics of the daemon and cmk-vault (docs/metrics.md): the catalogue of names, help and labels, the
        // swift-metrics factory over swift-prometheus's registry, the report/process collectors, the plain-HTTP /metrics
        // endpoint and the small local HTTP listener it shares with the daemon's event receiver. Never linked by cmkctl.
        .target(
            name: "CMKMetrics",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKSyncer", "CMKConfiguration",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // What the daemon and cmkctl share: the service graph built from a configuration (Daemon.build),
        // the state files (StateStore), the state-directory lock and the exit codes. cmkctl links this, not CMKDaemon.
        .target(
            name: "CMKHost",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKAccounts", "CMKSyncer", "CMKConfiguration", "CMKAudit", "CMKLocalVault", "CMKAzureKeyVault",
                "CMKPKCS11", "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKPostgresStorage", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cmk-syncer",
            dependencies: ["CMKDaemon", "CMKConfiguration", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .target(
            name: "CMKConfiguration",
            dependencies: ["CMKCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        .target(name: "CMKAudit", dependencies: ["CMKCore", "CMKTransparency", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // RFC 9162 Merkle tree, C2SP signed notes and checkpoints: the verifiable security log (docs/transparency.md).
        .target(name: "CMKTransparency", dependencies: ["CMKCore", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // The vault service's security log: records and Merkle nodes in SQLite, signed checkpoints (docs/vault-service.md).
        .target(
            name: "CMKVaultLog",
            dependencies: ["CMKTransparency", "CMKCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cmk-crashtest",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKAccounts", "CMKLocalVault", "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKPostgresStorage"],
            swiftSettings: strict
        ),
        .target(name: "CMKDirectoryStorage", dependencies: ["CMKCore"], swiftSettings: strict),
        // The postgres storage driver (issue 17): accounts in one PostgreSQL database, one pool per daemon.
        .target(
            name: "CMKPostgresStorage",
            dependencies: [
                "CMKCore", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CMKSQLiteStorage",
            dependencies: ["CMKCore", "CSQLiteConnection", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        // The vault service's identity store (tenant, administrators, service-principal keys, platform
        // identities) and its ES256 access tokens: shared by cmkctl and cmk-vault, no HTTP.
        .target(
            name: "CMKIdentity",
            dependencies: ["CMKCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // One SQLite connection option Swift cannot set (sqlite3_db_config is variadic).
        .target(name: "CSQLiteConnection", dependencies: [.product(name: "GRDBSQLite", package: "GRDB.swift")]),
        .executableTarget(name: "cmkctl", dependencies: ["CMKCtl"], swiftSettings: strict),
        // The Microsoft identity platform's wire shapes (token errors, form bodies, discovery): cmk-vault and the Azure test server.
        .target(name: "CMKEntra", swiftSettings: strict),
        // The customer's vault service: token endpoint, credentials and security-log API over HTTPS (docs/vault-service.md).
        .target(
            name: "CMKVaultService",
            dependencies: [
                "CMKCore", "CMKIdentity", "CMKConfiguration", "CMKSystemd", "CMKEntra", "CMKVaultLog", "CMKKeyVaultAPI", "CMKLocalVault",
                // Its /metrics on metrics.listen (issue 19): the same catalogue, factory and endpoint as the daemon's.
                "CMKMetrics",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                // Key events to the subscribed webhooks (EventPublisher); already built for the daemon's Azure provider.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "cmk-vault",
            dependencies: ["CMKVaultService", "CMKCore", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        // The benchmark program (`make bench`, `make bench-quick`; docs/performance.md). Not a test.
        .executableTarget(
            name: "cmk-bench",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKLocalVault", "CMKAccounts", "CMKSyncer", "CMKTesting",
                "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKPostgresStorage",
                "CMKIdentity", "CMKVaultService", "CMKVaultLog", "CMKTransparency", "CMKConfiguration", "CMKAzureTestServer", "CMKTestingHTTP",
                "CMKPKCS11",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                // RawLogReads times sqlite3 calls on the security log's database directly.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CMKCtl",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKAccounts", "CMKSyncer", "CMKConfiguration", "CMKAudit", "CMKHost", "CMKLocalVault", "CMKIdentity", "CMKVaultLog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "CMKCtlTests", dependencies: ["CMKCtl", "CMKDaemon", "CMKSyncer", "CMKConfiguration", "CMKCore", "CMKIdentity", "CMKTesting"], swiftSettings: strict),
        .testTarget(name: "CMKCoreTests", dependencies: ["CMKCore", "CMKTesting"], swiftSettings: strict),
        .testTarget(
            name: "CMKEnvelopeTests",
            dependencies: ["CMKCore", "CMKEnvelope", "CLibcrypto", "CMKTesting", .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKPKCS11Tests",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKPKCS11", "CPKCS11", "CMKTesting", "CMKAccounts", "CMKSyncer"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKLocalVaultTests",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKLocalVault", "CMKKeyVaultAPI", "CMKTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKAzureKeyVaultTests",
            dependencies: [
                "CMKCore", "CMKEnvelope", "CMKAzureKeyVault", "CMKTesting", "CMKTestingHTTP", "CMKAzureTestServer", "CMKAccounts", "CMKSyncer", "CMKDaemon",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKStorageTests",
            dependencies: ["CMKCore", "CMKTesting", "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKPostgresStorage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKAccountsTests",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKAccounts", "CMKTesting", "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKLocalVault"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKSyncerTests",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKAccounts", "CMKSyncer", "CMKTesting", "CMKLocalVault", "CMKPostgresStorage"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKDaemonTests",
            dependencies: ["CMKCore", "CMKSyncer", "CMKDaemon", "CMKConfiguration", "CMKAudit", "CMKSystemd", "CMKTesting"],
            swiftSettings: strict
        ),
        .testTarget(name: "CMKSystemdTests", dependencies: ["CMKSystemd", "CMKDaemon", "CMKConfiguration", "CMKTesting"], exclude: ["Scripts"], swiftSettings: strict),
        .testTarget(
            name: "CMKAzureTestServerTests",
            dependencies: [
                "CMKAzureTestServer", "CMKKeyVaultAPI", "CMKLocalVault", "CMKCore", "CMKTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            exclude: ["Scripts"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKVaultServiceTests",
            dependencies: ["CMKVaultService", "CMKCore", "CMKIdentity", "CMKVaultLog", "CMKTransparency", "CMKConfiguration", "CMKTesting", "CMKTestingHTTP", "CMKAzureTestServer",
                           .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Scripts"],
            swiftSettings: strict
        ),
        .testTarget(name: "CMKConfigurationTests", dependencies: ["CMKConfiguration", "CMKCore"], swiftSettings: strict),
        .testTarget(name: "CMKAuditTests", dependencies: ["CMKAudit", "CMKCore", "CMKTransparency"], swiftSettings: strict),
        .testTarget(
            name: "CMKTransparencyTests",
            dependencies: ["CMKTransparency", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["Scripts", "Vectors"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKVaultLogTests",
            dependencies: ["CMKVaultLog", "CMKTransparency", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKIdentityTests",
            dependencies: ["CMKIdentity", "CMKCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CMKCrashTests",
            dependencies: ["CMKCore", "CMKEnvelope", "CMKAccounts", "CMKLocalVault", "CMKDirectoryStorage", "CMKSQLiteStorage", "CMKTesting"],
            swiftSettings: strict
        ),
    ]
)
