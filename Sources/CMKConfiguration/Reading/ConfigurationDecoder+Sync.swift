import Yams

extension ConfigurationDecoder {
    static let syncKeys = ["interval", "jitter", "pulled-poll-interval", "probe-interval", "suspend", "concurrency", "backup-retention", "expiry-warning", "start-timeout", "retry", "instance-name"]
    static let retryKeys = ["attempts", "initial-delay", "max-delay"]
    static let cacheKeys = ["ttl", "capacity", "read-wait"]
    static let loggingKeys = ["level", "format"]

    func decodeSync(_ node: Node?) throws(ConfigurationError) -> SyncerConfiguration.Sync {
        let section = try reader.optionalMapping(node, at: "sync", keys: Self.syncKeys)
        var sync = SyncerConfiguration.Sync()
        if let n = section["interval"] {
            sync.interval = try reader.duration(n, at: "sync.interval", range: .seconds(60) ... .seconds(86_400), accepted: "1m to 24h")
        }
        let interval = DurationSyntax.format(sync.interval)
        if let n = section["jitter"] { sync.jitter = try decodeJitter(n, interval: sync.interval) }
        if let n = section["pulled-poll-interval"] {
            // The interval is at least 1m, so the range is never empty.
            sync.pulledPollInterval = try reader.duration(n, at: "sync.pulled-poll-interval", range: .seconds(10) ... sync.interval,
                                                          accepted: "10s to the interval, \(interval)")
        } else if sync.pulledPollInterval > sync.interval {
            sync.pulledPollInterval = sync.interval
        }
        if let n = section["probe-interval"] {
            if case .scalar(let scalar) = n, scalar.string == "off" {
                sync.probeInterval = nil
            } else {
                sync.probeInterval = try reader.duration(n, at: "sync.probe-interval", range: .seconds(10) ... sync.interval,
                                                         accepted: "10s to the interval, \(interval), or off")
            }
        }
        if let n = section["suspend"] {
            let accepted = SyncerConfiguration.Sync.SuspendPolicy.allCases.map(\.rawValue)
            sync.suspend = try SyncerConfiguration.Sync.SuspendPolicy(rawValue: reader.choice(n, at: "sync.suspend", noun: "a suspend policy", accepted: accepted))!
        }
        if let n = section["concurrency"] { sync.concurrency = try reader.int(n, at: "sync.concurrency", range: 1...64) }
        if let n = section["backup-retention"] {
            sync.backupRetention = try reader.duration(n, at: "sync.backup-retention", range: .zero ... .seconds(3650 * 86_400), accepted: "0s to 3650d")
        }
        if let n = section["expiry-warning"] {
            sync.expiryWarning = try reader.duration(n, at: "sync.expiry-warning", range: .zero ... .seconds(365 * 86_400), accepted: "0s (off) to 365d")
        }
        if let n = section["start-timeout"] {
            sync.startTimeout = try reader.duration(n, at: "sync.start-timeout", range: .seconds(1) ... .seconds(3600), accepted: "1s to 1h")
        }
        if let n = section["instance-name"] {
            let name = try reader.string(n, at: "sync.instance-name", expected: "a daemon name")
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:@")
            guard (1...64).contains(name.utf8.count), name.allSatisfy({ allowed.contains($0) }) else {
                throw reader.error(.invalidValue, "sync.instance-name",
                                   "\(Excerpt.quoted(name)) is not a daemon name (accepted: 1-64 letters, digits and . _ - : @; example: db-host-2)", at: n)
            }
            sync.instanceName = name
        }
        let retry = try reader.optionalMapping(section["retry"], at: "sync.retry", keys: Self.retryKeys)
        if let n = retry["attempts"] { sync.retry.attempts = try reader.int(n, at: "sync.retry.attempts", range: 1...10) }
        if let n = retry["initial-delay"] {
            sync.retry.initialDelay = try reader.duration(n, at: "sync.retry.initial-delay", range: .milliseconds(10) ... .seconds(3600), accepted: "10ms to 1h")
        }
        if let n = retry["max-delay"] {
            let lower = sync.retry.initialDelay
            sync.retry.maxDelay = try reader.duration(n, at: "sync.retry.max-delay", range: lower ... .seconds(3600),
                                                      accepted: "the initial delay, \(DurationSyntax.format(lower)), to 1h")
        } else if sync.retry.maxDelay < sync.retry.initialDelay {
            sync.retry.maxDelay = sync.retry.initialDelay
        }
        return sync
    }

    /// `10%` (0% to 50%, decimals allowed) or a duration shorter than the interval.
    private func decodeJitter(_ node: Node, interval: Duration) throws(ConfigurationError) -> SyncerConfiguration.Sync.Jitter {
        let accepted = "accepted: 0% to 50% of the interval, or a duration shorter than the interval, \(DurationSyntax.format(interval))"
        let text = try reader.string(node, at: "sync.jitter", expected: "a percentage or a duration (\(accepted))")
        if text.hasSuffix("%") {
            let number = text.dropLast()
            let parts = number.split(separator: ".", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                  let percent = Double(number)
            else {
                throw reader.error(.invalidValue, "sync.jitter", "\(Excerpt.quoted(text)) is not a percentage (\(accepted); examples: 10%, 2.5%, 30s)", at: node)
            }
            guard (0...50).contains(percent) else {
                throw reader.error(.invalidValue, "sync.jitter", "\(Excerpt.quoted(text)) is out of range (\(accepted))", at: node)
            }
            return .fraction(percent / 100)
        }
        guard let duration = DurationSyntax.parse(text) else {
            throw reader.error(.invalidValue, "sync.jitter", "\(Excerpt.quoted(text)) is neither a percentage nor a duration (\(accepted); examples: 10%, 2.5%, 30s)", at: node)
        }
        guard duration < interval else {
            throw reader.error(.invalidValue, "sync.jitter", "\(Excerpt.quoted(text)) is not shorter than the interval (\(accepted))", at: node)
        }
        return .fixed(duration)
    }

    func decodeCache(_ node: Node?) throws(ConfigurationError) -> SyncerConfiguration.Cache {
        let section = try reader.optionalMapping(node, at: "cache", keys: Self.cacheKeys)
        var cache = SyncerConfiguration.Cache()
        if let n = section["ttl"] { cache.ttl = try reader.duration(n, at: "cache.ttl", range: .seconds(1) ... .seconds(3600), accepted: "1s to 1h") }
        if let n = section["capacity"] { cache.capacity = try reader.int(n, at: "cache.capacity", range: 1...1_000_000) }
        if let n = section["read-wait"] { cache.readWait = try reader.duration(n, at: "cache.read-wait", range: .zero ... .seconds(600), accepted: "0s to 10m") }
        return cache
    }

    func decodeLogging(_ node: Node?) throws(ConfigurationError) -> SyncerConfiguration.Logging {
        let section = try reader.optionalMapping(node, at: "logging", keys: Self.loggingKeys)
        var logging = SyncerConfiguration.Logging()
        if let n = section["level"] {
            logging.level = try reader.choice(n, at: "logging.level", noun: "a log level", accepted: SyncerConfiguration.Logging.levels)
        }
        if let n = section["format"] {
            let accepted = SyncerConfiguration.Logging.Format.allCases.map(\.rawValue)
            logging.format = try SyncerConfiguration.Logging.Format(rawValue: reader.choice(n, at: "logging.format", noun: "a log format", accepted: accepted))!
        }
        return logging
    }
}
