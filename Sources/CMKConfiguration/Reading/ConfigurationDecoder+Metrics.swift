import Yams

extension ConfigurationDecoder {
    static let metricsKeys = ["listen"]

    /// `metrics`: `listen` (`127.0.0.1:PORT`, `[::1]:PORT` or `unix:/path`), required in the section.
    func decodeMetrics(_ node: Node) throws(ConfigurationError) -> SyncerConfiguration.Metrics {
        let section = try reader.mapping(node, at: "metrics", keys: Self.metricsKeys)
        guard let listenNode = section["listen"] else {
            throw reader.error(.missingKey, "metrics.listen", "is required when metrics is set (accepted: 127.0.0.1:PORT, [::1]:PORT or unix:/absolute/path; remove metrics to turn the endpoint off)", at: node)
        }
        return SyncerConfiguration.Metrics(listen: try decodeLocalListen(listenNode, at: "metrics.listen", what: "the metrics endpoint"))
    }
}
