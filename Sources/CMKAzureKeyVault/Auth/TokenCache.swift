import CMKCore
import Foundation

/// Caches one token per resource and renews it ``renewBefore`` its expiry. Concurrent callers
/// that need a new token share one fetch.
actor TokenCache {
    /// Renew this long before expiry (5 minutes, as the Azure SDKs do).
    static let renewBefore: Duration = .seconds(300)

    private enum Entry {
        case ready(AccessToken)
        case fetching(Task<AccessToken, any Error>)
    }

    private let fetch: @Sendable (_ resource: String, _ tenant: String?) async throws(VaultError) -> AccessToken
    private let now: @Sendable () -> Duration
    private var entries: [String: Entry] = [:]
    /// How many fetches were started (for tests of sharing and renewal).
    private(set) var fetches = 0

    init(now: @escaping @Sendable () -> Duration,
         fetch: @escaping @Sendable (_ resource: String, _ tenant: String?) async throws(VaultError) -> AccessToken) {
        self.now = now
        self.fetch = fetch
    }

    /// A token for `resource`: the cached one unless it is due for renewal or equals `rejected`
    /// (a token the vault just refused with 401).
    func token(resource: String, tenant: String? = nil, rejected: AccessToken? = nil) async throws(VaultError) -> AccessToken {
        switch entries[resource] {
        case .ready(let token) where token != rejected && now() < token.expiresAt - Self.renewBefore:
            return token
        case .fetching(let task):
            return try await Self.value(of: task)
        default:
            break
        }
        fetches += 1
        let fetch = self.fetch
        // The fetch runs in its own task so that one waiter's cancellation does not fail the
        // others that share it; it ends when the HTTP exchange does.
        let task = Task<AccessToken, any Error> { try await fetch(resource, tenant) }
        entries[resource] = .fetching(task)
        do {
            let token = try await Self.value(of: task)
            entries[resource] = .ready(token)
            return token
        } catch {
            entries[resource] = nil
            throw error
        }
    }

    /// The cached token, if any and still valid (no fetch).
    func cached(resource: String) -> AccessToken? {
        if case .ready(let token) = entries[resource], now() < token.expiresAt { return token }
        return nil
    }

    private static func value(of task: Task<AccessToken, any Error>) async throws(VaultError) -> AccessToken {
        do {
            return try await task.value
        } catch {
            throw VaultError.from(error, "token fetch")
        }
    }
}
