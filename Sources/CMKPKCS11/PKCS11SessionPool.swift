import CMKCore
import CPKCS11
import Foundation
import Logging
import Synchronization

/// The sessions of one token, found by its label, logged in as the user with the PIN.
///
/// A call takes an idle session (or opens one), runs, and gives it back; at most ``maxIdle``
/// sessions stay open between calls. A login holds for every session of the application on that
/// token, so the pool logs in once and again only after `CKR_USER_NOT_LOGGED_IN` (which
/// ``PKCS11KeyVault`` also reports when a search found no key and `C_GetSessionInfo` says the
/// session is not logged in: SoftHSM hides private objects from a logged-out session instead of
/// refusing the search). After `CKR_SESSION_HANDLE_INVALID`/`CKR_SESSION_CLOSED` the call is
/// repeated once on a new session, logged in again;
/// after `CKR_DEVICE_REMOVED`/`CKR_TOKEN_NOT_PRESENT` (and the other token-lost values) every idle
/// session is dropped, the token is looked up again by label, and the call is repeated once.
final class PKCS11SessionPool: Sendable {
    let module: PKCS11Module
    /// The token's label (`CKA_LABEL` of the token, not secret).
    let tokenLabel: String
    private let pin: SecretBytes
    let maxIdle: Int
    private let logger: Logger

    private struct State: Sendable {
        var slot: CK_SLOT_ID?
        var idle: [CK_SESSION_HANDLE] = []
        var loggedIn = false
        /// Bumped whenever the token is looked up again: sessions of an older generation are closed.
        var generation = 0
        var statistics = PKCS11PoolStatistics()
    }
    private let state = Mutex(State())

    init(module: PKCS11Module, tokenLabel: String, pin: SecretBytes, maxIdle: Int, logger: Logger) {
        self.module = module
        self.tokenLabel = tokenLabel
        self.pin = pin
        self.maxIdle = maxIdle
        self.logger = logger
    }

    /// Runs `body` on a logged-in session; PKCS#11 failures become ``PKCS11Failure`` after the
    /// recovery described on the type.
    func withSession<R>(_ body: (PKCS11Session) throws(PKCS11Failure) -> R) throws(PKCS11Failure) -> R {
        var attempt = 0
        var fresh = false
        while true {
            attempt += 1
            let (session, generation) = try acquire(fresh: fresh)
            do {
                let result = try body(session)
                release(session.handle, generation: generation)
                return result
            } catch {
                guard attempt == 1 else {
                    release(session.handle, generation: generation)
                    throw error
                }
                if error.rv == PKCS11Failure.userNotLoggedIn {
                    logger.info("PKCS#11 token reports the user logged out; logging in again", metadata: ["token": "\(tokenLabel)"])
                    state.withLock { $0.loggedIn = false }
                    release(session.handle, generation: generation)
                } else if PKCS11Failure.sessionLost.contains(error.rv) {
                    logger.info("PKCS#11 session lost; opening a new one", metadata: ["token": "\(tokenLabel)", "rv": "\(error.name)"])
                    // The handle is dead: forget it without closing. The repeat runs on a new session
                    // (other idle ones may be dead too) and logs in again: closing every session of
                    // the application (C_CloseAllSessions, or the last one closed) also logs it out,
                    // and C_Login answers CKR_USER_ALREADY_LOGGED_IN when it did not.
                    state.withLock { state in
                        state.statistics.inUse -= 1
                        state.loggedIn = false
                    }
                    fresh = true
                } else if PKCS11Failure.tokenLost.contains(error.rv) {
                    logger.warning("PKCS#11 token lost; looking it up again by label", metadata: ["token": "\(tokenLabel)", "rv": "\(error.name)"])
                    state.withLock { $0.statistics.inUse -= 1 }
                    forgetToken()
                } else {
                    release(session.handle, generation: generation)
                    throw error
                }
            }
        }
    }

    /// A logged-in session: an idle one unless `fresh`, else a new one. On failure nothing stays counted in use.
    private func acquire(fresh: Bool) throws(PKCS11Failure) -> (PKCS11Session, Int) {
        let taken: (CK_SESSION_HANDLE?, CK_SLOT_ID?, Bool, Int) = state.withLock { state in
            state.statistics.calls += 1
            state.statistics.inUse += 1
            state.statistics.peakInUse = max(state.statistics.peakInUse, state.statistics.inUse)
            let idle = fresh ? nil : state.idle.popLast()
            if idle == nil { state.statistics.opened += 1 }
            return (idle, state.slot, state.loggedIn, state.generation)
        }
        do {
            return try acquire(taken)
        } catch {
            state.withLock { $0.statistics.inUse -= 1 }
            throw error
        }
    }

    private func acquire(_ taken: (CK_SESSION_HANDLE?, CK_SLOT_ID?, Bool, Int)) throws(PKCS11Failure) -> (PKCS11Session, Int) {
        var (handle, slot, loggedIn, generation) = taken
        if let handle, loggedIn { return (PKCS11Session(module: module, handle: handle), generation) }
        if slot == nil {
            slot = try findSlot()
            generation = state.withLock { state in
                state.slot = slot
                return state.generation
            }
        }
        if handle == nil {
            var opened: CK_SESSION_HANDLE = 0
            try module.call("C_OpenSession") { $0.C_OpenSession?(slot!, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &opened) }
            handle = opened
        }
        let session = PKCS11Session(module: module, handle: handle!)
        if !loggedIn {
            do {
                try login(session)
            } catch {
                close(session.handle)
                throw error
            }
            state.withLock { state in
                state.loggedIn = true
                state.statistics.logins += 1
            }
        }
        return (session, generation)
    }

    private func login(_ session: PKCS11Session) throws(PKCS11Failure) {
        let count = CK_ULONG(pin.count)
        let rv: CK_RV? = pin.withUnsafeBytes { raw in
            let pointer = UnsafeMutablePointer(mutating: raw.bindMemory(to: CK_UTF8CHAR.self).baseAddress)
            return module.functions.pointee.C_Login?(session.handle, CK_USER_TYPE(CKU_USER), pointer, count)
        }
        // CKR_USER_ALREADY_LOGGED_IN: another session of this application logged in.
        guard let rv else { throw PKCS11Failure("C_Login", 0x54) }
        guard rv == 0 || rv == 0x100 else { throw PKCS11Failure("C_Login", rv) }
    }

    private func findSlot() throws(PKCS11Failure) -> CK_SLOT_ID {
        let tokens = try module.tokens()
        guard let match = tokens.first(where: { $0.label == tokenLabel }) else {
            throw PKCS11Failure("C_GetTokenInfo", 0xE0)  // CKR_TOKEN_NOT_PRESENT: no token has the label
        }
        return match.slot
    }

    private func release(_ handle: CK_SESSION_HANDLE, generation: Int) {
        let keep = state.withLock { state in
            state.statistics.inUse -= 1
            guard state.generation == generation, state.idle.count < maxIdle else {
                state.statistics.closedOverLimit += 1
                return false
            }
            state.idle.append(handle)
            return true
        }
        if !keep { close(handle) }
    }

    private func close(_ handle: CK_SESSION_HANDLE) {
        _ = module.functions.pointee.C_CloseSession?(handle)
    }

    private func forgetToken() {
        let idle = state.withLock { state in
            defer {
                state.idle = []
                state.slot = nil
                state.loggedIn = false
                state.generation += 1
            }
            return state.idle
        }
        idle.forEach(close)
    }

    var statistics: PKCS11PoolStatistics { state.withLock { $0.statistics } }

    /// The labels of the tokens present now, for an error naming what is there instead.
    func presentLabels() -> [String] {
        (try? module.tokens().map(\.label)) ?? []
    }

    /// The mechanisms of the token, looked up by label.
    func mechanisms() throws(PKCS11Failure) -> Set<CK_MECHANISM_TYPE> {
        try module.mechanisms(slot: findSlot())
    }
}

/// What the session pool did (for benchmarks and diagnosis): calls, sessions opened because none
/// was idle, sessions closed on release because ``PKCS11SessionPool/maxIdle`` were already idle,
/// the most calls holding a session at once, and the successful `C_Login` calls (one, plus one per
/// recovery that logged in again). The pool never waits for a session: a call that finds
/// none idle opens one.
public struct PKCS11PoolStatistics: Sendable, Hashable {
    public var calls = 0
    public var opened = 0
    public var closedOverLimit = 0
    public var inUse = 0
    public var peakInUse = 0
    public var logins = 0
    /// The most threads that made token calls at once (``PKCS11Threads``; at most `sessions`).
    public var peakThreads = 0
}
