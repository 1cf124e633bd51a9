import CMKConfiguration
import CMKCore
import CMKIdentity
import CMKKeyVaultAPI
import CMKLocalVault
import CMKMetrics
import CMKSystemd
import CMKVaultLog
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOSSL

/// `cmk-vault run`: opens the identity store and token keys in the state directory, reads the
/// TLS certificate and key, and serves the routes until cancelled, telling systemd when it is
/// ready and when it stops.
public struct VaultServer: Sendable {
    public let configuration: VaultServiceConfiguration
    public let logger: Logger

    public init(configuration: VaultServiceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Why the service cannot start; `description` names the file or setting and the fix.
    public struct StartError: Error, CustomStringConvertible {
        public let description: String
        /// `EX_CONFIG` (78) for a configuration the operator must fix, 1 otherwise.
        public let exitCode: Int32
    }

    /// The routes over the state in `configuration.stateDirectory` (also used by tests in-process).
    public func makeRoutes(events: (any ServiceEventSink)? = nil, metrics: VaultServiceMetrics? = nil) throws -> VaultRoutes {
        try Self.prepareStateDirectory(configuration.stateDirectory)
        let store = try IdentityStore(stateDirectory: configuration.stateDirectory)
        let logger = self.logger
        let keys = try TokenSigningKeys(stateDirectory: configuration.stateDirectory, onReload: { keys in
            let now = Date()
            logger.notice("The token-signing keys were replaced; the new file is in use.", metadata: [
                "message_id": .string(VaultMessageID.signingKeysReloaded),
                "cmk_signing_kid": .string(keys.last { $0.activates <= now }?.kid ?? keys[0].kid),
                "cmk_published_kids": .string(keys.map(\.kid).joined(separator: ",")),
            ])
        }, onReloadFailure: { error in
            logger.error("The replaced token-signing key file cannot be used; the keys read before stay in use.", metadata: [
                "message_id": .string(VaultMessageID.signingKeysReloadFailed), "cmk_error": .string(error.description),
            ])
        })
        let tokens = TokenService(store: store, keys: keys, issuerBase: configuration.publicURL)
        let auth = configuration.authentication
        let throttle = FailureThrottle(limits: .init(perClient: auth.failuresPerClient, perAddress: auth.failuresPerAddress, window: auth.failureWindow))
        let log: VaultSecurityLog
        do {
            log = try VaultSecurityLog(stateDirectory: configuration.stateDirectory,
                                       origin: LogSigningKey.origin(publicURL: configuration.publicURL, tenantID: store.tenant.tenantID))
        } catch let error as VaultLogError {
            throw StartError(description: error.description, exitCode: error.code == .permissions || error.code == .originChanged ? 78 : 1)
        }
        let sink = SecurityLogSink(log: log, next: events ?? JournalEventSink(logger: logger), logger: logger)
        var routes = VaultRoutes(store: store, tokens: tokens, throttle: throttle, events: sink,
                                 publicURL: configuration.publicURL, maxPageSize: configuration.limits.maxPageSize, log: log)
        routes.metrics = metrics
        return routes
    }

    /// The plain-HTTP `GET /metrics` on `metrics.listen` (docs/metrics.md), not started; nil when
    /// `metrics` is off. It never shares the HTTPS listener: scrapes need no token or certificate
    /// and the endpoint only ever listens on loopback or a unix socket.
    func makeMetricsEndpoint(metrics: VaultServiceMetrics?, log: VaultSecurityLog?) -> MetricsEndpoint? {
        guard let metrics, let settings = configuration.metrics else { return nil }
        return MetricsEndpoint(listen: settings.listen, logger: logger) {
            metrics.exposition { Self.securityLogSize(log) }
        }
    }

    /// The security log's records and the bytes of its database and write-ahead log (nil when unreadable).
    static func securityLogSize(_ log: VaultSecurityLog?) -> (records: UInt64?, bytes: UInt64?) {
        guard let log else { return (nil, nil) }
        var bytes: UInt64?
        for path in [log.path, log.path + "-wal"] {
            var info = stat()
            if stat(path, &info) == 0 { bytes = (bytes ?? 0) + UInt64(info.st_size) }
        }
        return (try? log.size(), bytes)
    }

    /// The keys API over the local vault in `<state-directory>/vault`, opened (created on the first
    /// start) with the configured master key; nil when the configuration has no `vault` section.
    public func makeKeyVaultAPI(environment: [String: String] = ProcessInfo.processInfo.environment, clock: any WallClock = SystemWallClock()) throws -> KeyVaultAPI? {
        guard let settings = configuration.vault else { return nil }
        let masterKey: MasterKeySource
        switch settings.masterKey {
        case .file(let path):
            if settings.createMasterKey, !FileManager.default.fileExists(atPath: path) {
                do { try LocalVault.createMasterKeyFile(at: URL(fileURLWithPath: path)) } catch {
                    throw StartError(description: "vault.master-key-file: \(error.description)", exitCode: 78)
                }
            }
            masterKey = .file(URL(fileURLWithPath: path))
        case .credential(let name):
            masterKey = .systemdCredential(name: name, credentialsDirectory: environment["CREDENTIALS_DIRECTORY"].map { URL(fileURLWithPath: $0) })
        }
        let vault: LocalVault
        do {
            vault = try LocalVault(configuration: .init(directory: URL(fileURLWithPath: configuration.stateDirectory + "/vault"), masterKey: masterKey,
                                                        retentionDays: settings.retentionDays, purgeProtection: settings.purgeProtection, clock: clock))
        } catch {
            throw StartError(description: "vault: \(error.description)", exitCode: error.code == .misconfigured ? 78 : 1)
        }
        return KeyVaultAPI(configuration: .init(retentionDays: settings.retentionDays, purgeProtection: settings.purgeProtection, clock: clock,
                                                vaultName: URLComponents(string: configuration.publicURL)?.host ?? "cmk-vault"),
                           store: vault, vaultURL: { [publicURL = configuration.publicURL] in publicURL })
    }

    /// The hosts' latest usage reports in `<state-directory>/usage` (HostUsageFiles): what
    /// `POST /v1.0/usageReports` stores and the keys API's guard and the console read.
    public func makeHostUsageBook() -> any HostUsageBook {
        HostUsageFiles(stateDirectory: configuration.stateDirectory, logger: logger)
    }

    /// The publisher of key events to `events.subscriptions` (EventPublisher), not yet started;
    /// nil without subscriptions. The keys API's routes and the rotation scheduler share it.
    public func makeEventPublisher(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EventPublisher? {
        guard let events = configuration.events, !events.subscriptions.isEmpty else { return nil }
        do {
            return try EventPublisher(events: events, publicURL: configuration.publicURL, environment: environment, logger: logger)
        } catch {
            throw StartError(description: error.description, exitCode: 78)
        }
    }

    /// Serves until the task is cancelled.
    public func run(environment: [String: String] = ProcessInfo.processInfo.environment,
                    onListening: @Sendable @escaping (SocketAddress?) async -> Void = { _ in }) async throws {
        let tls = try loadTLS(environment: environment)
        let endpoint = try listenEndpoint()
        let metrics = configuration.metrics.map { _ in VaultServiceMetrics() }
        let routes = try makeRoutes(metrics: metrics)
        let router = Router(context: VaultRequestContext.self)
        // Before any route: middleware wraps the routes added after it.
        if let metrics { router.add(middleware: RequestMetrics(metrics: metrics)) }
        routes.register(on: router)
        let api = try makeKeyVaultAPI(environment: environment)
        let publisher = try makeEventPublisher(environment: environment)
        publisher?.start()
        // The hosts' usage reports (UsageRoutes.swift), read by the keys API's guard and the console.
        let usage = makeHostUsageBook()
        UsageRoutes(routes: routes, book: usage, logger: self.logger).register(on: router)
        let keyRoutes = api.map { api in
            let perWindow = configuration.limits.keyOperationsPer10s
            return KeyVaultRoutes(routes: routes, api: api, rateLimit: perWindow > 0 ? KeyOperationRateLimit(operations: perWindow) : nil,
                                  keyEvents: publisher, inUseGuard: InUseGuard(book: usage, api: api, logger: self.logger))
        }
        keyRoutes?.register(on: router)
        // The customer's console (docs/console.md): the same calls, as pages; sessions in memory.
        ConsoleRoutes(routes: routes, keys: keyRoutes, usage: usage, sessions: ConsoleSessions()).register(on: router)
        // The rotation policies' scheduler runs beside the listener and stops with it.
        let scheduler = api.map { api in
            RotationScheduler(api: api, events: routes.events, keyEvents: publisher, interval: configuration.vault?.rotationCheckInterval ?? .seconds(60), logger: self.logger)
        }
        let metricsEndpoint = makeMetricsEndpoint(metrics: metrics, log: routes.log)
        do {
            try await metricsEndpoint?.start()
        } catch {
            throw StartError(description: "metrics.listen: \(configuration.metrics.map { "\($0.listen)" } ?? "") cannot be listened on (\(error)): choose a free port or a socket path in a directory the service may write, in \(configuration.file)", exitCode: 78)
        }
        let schedulerTask = scheduler.map { scheduler in Task { await scheduler.run() } }
        defer { schedulerTask?.cancel() }
        let listener = HTTPSListener(endpoint: endpoint, tls: tls, maxBodyBytes: configuration.limits.maxBodyBytes,
                                     maxHeaderBytes: configuration.limits.maxHeaderBytes, logger: logger)
        let notifier = SystemdNotifier()
        let logger = self.logger, tenant = routes.tenantID, publicURL = configuration.publicURL
        try await listener.run(router: router) { address in
            logger.notice("The vault service is listening.", metadata: [
                "message_id": .string(VaultMessageID.listening), "cmk_address": .string(address.map { "\($0)" } ?? "systemd socket"),
                "cmk_tenant": .string(tenant), "cmk_public_url": .string(publicURL),
            ])
            notifier.ready(status: "serving tenant \(tenant) at \(publicURL)")
            await onListening(address)
        }
        notifier.stopping(status: "stopping")
        await metricsEndpoint?.close()
        await publisher?.shutdown()
    }

    func listenEndpoint() throws -> HTTPSListener.Endpoint {
        switch configuration.listen {
        case .address(let host, let port):
            return .address(host: host, port: port)
        case .systemd:
            let sockets = SocketActivation.listeningStreamSockets()
            guard sockets.count == 1 else {
                throw StartError(description: "listen: systemd, but \(sockets.isEmpty ? "no listening socket was passed" : "\(sockets.count) sockets were passed"): start cmk-vault through cmk-vault.socket, or set listen: HOST:PORT in \(configuration.file)", exitCode: 78)
            }
            return .inherited(sockets[0])
        }
    }

    func loadTLS(environment: [String: String]) throws -> TLSConfiguration {
        let certificate = try read(configuration.tls.certificate, what: "tls certificate", private: false, environment: environment)
        var key = try read(configuration.tls.key, what: "tls key", private: true, environment: environment)
        defer { for index in key.indices { key[index] = 0 } }
        do {
            return try HTTPSListener.tlsConfiguration(certificateChainPEM: certificate, privateKeyPEM: key, minimumVersion: configuration.tls.minimumVersion)
        } catch {
            throw StartError(description: "tls: the certificate chain or private key is not valid PEM, or they do not belong together (\(type(of: error))): \(describe(configuration.tls.certificate)), \(describe(configuration.tls.key))", exitCode: 78)
        }
    }

    private func describe(_ source: VaultServiceConfiguration.Source) -> String {
        switch source {
        case .file(let path): path
        case .credential(let name): "credential \(name)"
        }
    }

    /// The bytes of a PEM file or credential. A private key's file must be private to the
    /// service's user (no group or other access); a credential is systemd's, already private.
    private func read(_ source: VaultServiceConfiguration.Source, what: String, private isPrivate: Bool, environment: [String: String]) throws -> [UInt8] {
        let path: String
        switch source {
        case .file(let file):
            path = file
        case .credential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                throw StartError(description: "\(what) is the systemd credential '\(name)' but CREDENTIALS_DIRECTORY is not set: add LoadCredential=\(name):<path> to the unit", exitCode: 78)
            }
            path = directory + "/" + name
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw StartError(description: "\(what): \(path) cannot be read: \(String(cString: strerror(errno)))", exitCode: 78)
        }
        if isPrivate, case .file = source, info.st_mode & 0o077 != 0 {
            throw StartError(description: "\(what): \(path) is readable or writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it", exitCode: 78)
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw StartError(description: "\(what): \(path) cannot be read, or is larger than 1 MiB", exitCode: 78)
        }
        return [UInt8](data)
    }

    /// Creates the state directory (0700) when missing; refuses one others can enter.
    static func prepareStateDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else { throw StartError(description: "state-directory: \(path): \(String(cString: strerror(errno)))", exitCode: 1) }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StartError(description: "state-directory: \(path) cannot be created: \(error.localizedDescription)", exitCode: 1)
            }
            return
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw StartError(description: "state-directory: \(path) is not a directory", exitCode: 78) }
        guard info.st_mode & 0o077 == 0 else {
            throw StartError(description: "state-directory: \(path) is open to group or others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 700 it", exitCode: 78)
        }
    }
}

/// MESSAGE_IDs of `cmk-vault` (systemd/cmk-vault.catalog).
public enum VaultMessageID {
    public static let listening = "3f0a3a8a9c7f4b5e8d2c6e1b7a4f9d21"
    public static let configurationInvalid = "b2e6f4c1d8a94e3f9a7c5d2e1f0b8a63"
    public static let startFailed = "c9d1e7f3a5b24c8e9f6a3d1b7e5c2f40"
    public static let event = "e4a7c2f9b1d84e6a8c3f5b9d2e7a1c06"
    /// `cmkctl vault rotate-signing-key` replaced the key file and the service read it.
    public static let signingKeysReloaded = "5d8e2b7f1c9a4d3e8b6f0a2c4e7d9b15"
    /// A replaced key file cannot be read; the keys read before stay in use.
    public static let signingKeysReloadFailed = "a61f3c8e2d7b4950b8e4c1f6d3a9e207"
    /// An event the security log could not record (the request itself was answered).
    public static let recordFailed = "7b3e9d1c5a2f4e8b9c6d0a3f1e7b5d92"

    /// A key's rotation policy made a new version.
    public static let keyRotatedByPolicy = "368872d16ff6422fa8c3f918b96963cb"
    /// A key's current version is within its Notify window (or 30 days) of its expiry.
    public static let keyNearExpiry = "4aef4a23e9f14cb8bc670ec3c89610f3"
    /// A key's current version has expired.
    public static let keyExpired = "628d476c13d94763803acf8499b94868"
    /// A rotation policy could not be read or carried out; tried again at the next check.
    public static let rotationPolicyFailed = "ceda3ec0b6e146e98946de04c9878d04"

    /// A key event could not be delivered to a subscription (retried, or dropped after the last try).
    public static let eventDeliveryFailed = "b4777ed1515148899f20faa4b439acf8"

    /// A key version that hosts still use was disabled or expired through the keys API (`disabled-in-use`).
    public static let versionDisabledInUse = "9d691ba3f93c46dca6334ed17308cf30"
    /// A host usage report file was skipped (corrupt, foreign, unreadable).
    public static let usageReportSkipped = "f2df1bf8cae7436690de5ef3b989071d"

    /// Every id above: the catalog has one entry for each.
    public static let all = [listening, configurationInvalid, startFailed, event, signingKeysReloaded, signingKeysReloadFailed, recordFailed,
                             keyRotatedByPolicy, keyNearExpiry, keyExpired, rotationPolicyFailed, eventDeliveryFailed,
                             versionDisabledInUse, usageReportSkipped]
}
