import CMKIdentity
import Foundation
import Synchronization

/// The console's sign-in sessions, kept in memory (docs/console.md, "Sessions"): a random id
/// (the cookie's value, 256 bits) → the 1-hour token the sign-in obtained, when it expires, and the
/// session's CSRF token. The token is verified again on every request, so a revoked key or a
/// removed administrator is signed out at the next click, as the APIs refuse its bearer token.
/// A restart of `cmk-vault` forgets every session: everyone signs in again.
final class ConsoleSessions: Sendable {
    struct Session: Sendable {
        var token: String
        var expires: Date
        var csrf: String
    }

    /// At most this many sessions are kept; the one closest to expiry goes first.
    static let maximumSessions = 1000

    private let sessions = Mutex([String: Session]())

    /// A new session for `token` (valid until `expires`): its id and CSRF token.
    func open(token: String, expires: Date, now: Date = Date()) -> (id: String, session: Session) {
        let id = Self.random(), session = Session(token: token, expires: expires, csrf: Self.random())
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= Self.maximumSessions, let first = sessions.min(by: { $0.value.expires < $1.value.expires })?.key {
                sessions[first] = nil
            }
            sessions[id] = session
        }
        return (id, session)
    }

    /// The live session of `id`, if any (an expired one is forgotten).
    func session(_ id: String, now: Date = Date()) -> Session? {
        sessions.withLock { sessions in
            guard let session = sessions[id] else { return nil }
            guard session.expires > now else {
                sessions[id] = nil
                return nil
            }
            return session
        }
    }

    func close(_ id: String) {
        _ = sessions.withLock { $0.removeValue(forKey: id) }
    }

    /// 256 random bits, base64url without padding.
    static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8]()
        for _ in 0..<4 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return Base64URL.encode(bytes)
    }

    /// Equal strings, compared in time that depends only on their lengths.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}
