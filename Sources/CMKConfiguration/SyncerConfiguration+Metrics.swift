extension SyncerConfiguration {
    /// `metrics` (mapping, optional; absent: off): where the daemon serves its Prometheus metrics
    /// (`GET /metrics`, text exposition 0.0.4; docs/metrics.md).
    public struct Metrics: Sendable, Hashable {
        /// Loopback with a port, or a unix socket: the same forms as `events.listen`.
        public typealias Listen = Events.Listen

        /// `metrics.listen` (address, required in the section, not secret): `127.0.0.1:PORT` (any
        /// 127.x.y.z), `[::1]:PORT` or `unix:/absolute/path` (the socket is made mode 0660: the
        /// daemon's user and group). Any other address is refused: the endpoint has no
        /// authentication, so a scraper on another machine goes through a proxy on this one.
        public var listen: Listen

        public init(listen: Listen) { self.listen = listen }
    }
}
