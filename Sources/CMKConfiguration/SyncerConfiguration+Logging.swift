extension SyncerConfiguration {
    /// `logging`: how much is logged and where.
    public struct Logging: Sendable, Hashable {
        /// `logging.format`: the shape of log output.
        public enum Format: String, Sendable, Hashable, CaseIterable {
            /// The journal's native protocol when stderr is connected to the journal
            /// (`$JOURNAL_STREAM` matches), readable text otherwise.
            case auto
            /// Always the journal's native protocol with structured fields.
            case journal
            /// Readable text on stderr.
            case text
            /// One JSON object per line on stderr.
            case json
        }

        /// The accepted levels, lowest first (the raw values of swift-log's `Logger.Level`).
        public static let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

        /// `logging.level` (one of ``levels``, default `info`, not secret).
        public var level: String
        /// `logging.format` (`auto | journal | text | json`, default `auto`, not secret).
        public var format: Format

        public init(level: String = "info", format: Format = .auto) {
            self.level = level
            self.format = format
        }
    }
}
