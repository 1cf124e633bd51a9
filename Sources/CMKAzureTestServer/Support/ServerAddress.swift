import Synchronization

/// `https://127.0.0.1:PORT` of the TLS listener, known only once it is bound; the vault (key ids,
/// `nextLink`s) and the identity platform (token endpoint, discovery) both build URLs from it.
final class ServerAddress: Sendable {
    private let value = Mutex("")

    var url: String {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
