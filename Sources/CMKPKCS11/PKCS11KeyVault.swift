import CMKCore
import CPKCS11
import Foundation
import Logging
import Synchronization

/// The `pkcs11` vault provider: root keys are AES-256 secret keys generated inside a PKCS#11 token,
/// one object per version, and DEKs are wrapped and unwrapped on the token with AES key wrap with
/// padding (RFC 5649; ``WrapAlgorithm/aesKeyWrapPad``). An AES key has no public half, so every wrap
/// is a token call too (``VaultCapabilities/wrapsInVault``). docs/providers/pkcs11.md.
public final class PKCS11KeyVault: KeyVault, Sendable {
    /// With `wrap-algorithm: A256KWP` every wrap is a token call (an AES key has no public half);
    /// with `RSA-OAEP-256` DEKs are wrapped locally with the exported public key and only unwraps
    /// reach the token. Either way both algorithms unwrap, each with its own kind of version, so
    /// an account moves from one to the other at its next rebind (docs/providers/pkcs11.md).
    public let capabilities: VaultCapabilities
    let pool: PKCS11SessionPool
    let configuration: PKCS11VaultConfiguration
    /// The key-wrap mechanism the token offers: `CKM_AES_KEY_WRAP_KWP` (3.0), else 2.40's
    /// `CKM_AES_KEY_WRAP_PAD`, which SoftHSM 2.6 implements as RFC 5649. Chosen at the first call
    /// that reaches the token.
    private let mechanism = MechanismChoice()
    /// The threads that make the token calls (at most `sessions`), off Swift's cooperative pool.
    let threads: PKCS11Threads

    /// Loads the module and reads the PIN; the token itself is reached at the first call, so a
    /// token that is absent at start is an outage the syncer reports, not a failed start.
    public init(configuration: PKCS11VaultConfiguration, logger: Logger = Logger(label: "cmk.vault.pkcs11")) throws(VaultError) {
        guard !configuration.tokenLabel.isEmpty, configuration.tokenLabel.utf8.count <= 32 else {
            throw VaultError(.misconfigured, "PKCS#11 token label '\(configuration.tokenLabel)' must have 1-32 bytes (CK_TOKEN_INFO.label)")
        }
        guard (7...90).contains(configuration.retentionDays) else {
            throw VaultError(.misconfigured, "PKCS#11 retention-days is \(configuration.retentionDays); use 7 to 90")
        }
        guard (1...64).contains(configuration.sessions) else {
            throw VaultError(.misconfigured, "PKCS#11 sessions is \(configuration.sessions); use 1 to 64")
        }
        let module = try PKCS11Module.load(path: configuration.modulePath)
        let pin = try configuration.pin.load()
        self.configuration = configuration
        let rsa = configuration.wrapAlgorithm == .rsaOAEP256
        self.capabilities = VaultCapabilities(provider: "pkcs11", exportsPublicKey: rsa, wrapsInVault: !rsa,
                                              algorithms: rsa ? [.rsaOAEP256, .aesKeyWrapPad] : [.aesKeyWrapPad], managesKeys: true)
        self.pool = PKCS11SessionPool(module: module, tokenLabel: configuration.tokenLabel, pin: pin, maxIdle: configuration.sessions, logger: logger)
        self.threads = PKCS11Threads(limit: configuration.sessions)
    }

    var now: Date { configuration.clock.now() }

    /// What the session pool has done so far (sessions opened and closed, the peak in use), and the
    /// most token-call threads that ran at once.
    public var poolStatistics: PKCS11PoolStatistics {
        var statistics = pool.statistics
        statistics.peakThreads = threads.peakThreads
        return statistics
    }

    // MARK: KeyVault

    public func snapshot(of key: KeyReference) async throws -> KeySnapshot {
        try await token("reading key '\(key)'") { session in
            try self.snapshot(key, session)
        }
    }

    /// The public half of an RSA version: `CKA_MODULUS` and `CKA_PUBLIC_EXPONENT` of its public-key
    /// object (public attributes; nothing of the private key is read).
    public func publicKey(of key: KeyReference, version: String) async throws -> PublicKeyMaterial {
        try await token("reading the public key of version \(version) of key '\(key)'") { session in
            let object = try self.usableVersion(key, version, session)
            guard object.kind == .rsa else {
                throw Refusal(VaultError(.unsupported, "version \(version) of key '\(key)' is an AES-256 key on the token: it has no public key (it wraps with A256KWP on the token); rotate the key to make an RSA version"))
            }
            guard let handle = try session.find(Self.publicKeyTemplate(key, id: object.idBytes)).first else {
                throw Refusal(VaultError(.notFound, "version \(version) of key '\(key)' has no RSA public-key object on the token (same CKA_LABEL and CKA_ID as its private key)"))
            }
            let values = try session.attributes([CKA_MODULUS, CKA_PUBLIC_EXPONENT], of: handle)
            guard let modulus = values[CKA_MODULUS], !modulus.isEmpty, let exponent = values[CKA_PUBLIC_EXPONENT], !exponent.isEmpty else {
                throw Refusal(VaultError(.corrupt, "the RSA public key of version \(version) of key '\(key)' has no CKA_MODULUS or CKA_PUBLIC_EXPONENT"))
            }
            return .rsa(modulus: Data(modulus), exponent: Data(exponent))
        }
    }

    public func wrap(_ dek: SecretBytes, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> Data {
        guard algorithm == .aesKeyWrapPad else {
            throw VaultError(.unsupported, "the pkcs11 provider wraps \(algorithm.rawValue) locally with the version's public key (publicKey(of:version:)); on the token it wraps only A256KWP")
        }
        // SoftHSM 2.6.1 zero-pads a key that is not a multiple of 8 bytes before wrapping, which is
        // not RFC 5649 (KeyWrapVectorTests): only such keys are wrapped (DEKs are 32 bytes).
        guard dek.count > 0, dek.count % 8 == 0 else {
            throw VaultError(.invalidInput, "the pkcs11 provider wraps keys of a multiple of 8 bytes (a DEK has 32), not \(dek.count) bytes")
        }
        let mechanism = try await mechanismType()
        return try await token("wrapping under version \(version) of key '\(key)'") { session in
            let object = try self.usableVersion(key, version, session)
            guard object.kind == .aes else {
                throw Refusal(VaultError(.unsupported, "version \(version) of key '\(key)' is an RSA key pair: DEKs are wrapped with RSA-OAEP-256 locally with its public key, not with A256KWP"))
            }
            let record = try self.record(key, session)?.record ?? KeyRecord()
            let dates = record.versions[object.id]
            let stored = KeyVersion(id: object.id, created: dates?.created ?? .distantPast, enabled: object.enabled,
                                    notBefore: dates?.notBefore, expires: dates?.expires)
            if let refusal = stored.wrapRefusal(at: self.now) {
                throw Refusal(VaultError(refusal == .disabled ? .disabled : .invalidInput,
                                         "version \(version) of key '\(key)' may not wrap now: it is \(refusal); wrap with a version that is valid now"))
            }
            return try session.wrap(dek, with: object.handle, mechanism: mechanism)
        }
    }

    public func unwrap(_ wrappedKey: Data, key: KeyReference, version: String, algorithm: WrapAlgorithm) async throws -> SecretBytes {
        // Both algorithms unwrap whatever wrap-algorithm says (it decides only new wrappings), so
        // accounts can move back from RSA-OAEP-256 to A256KWP: the version object must match below.
        guard capabilities.algorithms.contains(algorithm) || algorithm == .rsaOAEP256 else {
            throw VaultError(.unsupported, "this pkcs11 provider unwraps \(capabilities.algorithms.map(\.rawValue).sorted().joined(separator: " and ")), not \(algorithm.rawValue) (vault.pkcs11.wrap-algorithm)")
        }
        let mechanism = algorithm == .aesKeyWrapPad ? try await mechanismType() : CK_MECHANISM_TYPE(CKM_RSA_PKCS_OAEP)
        return try await token("unwrapping under version \(version) of key '\(key)'") { session in
            let object = try self.usableVersion(key, version, session)
            guard object.kind == (algorithm == .aesKeyWrapPad ? .aes : .rsa) else {
                throw Refusal(VaultError(.invalidInput, "version \(version) of key '\(key)' is \(object.kind == .rsa ? "an RSA key pair" : "an AES-256 key"): it cannot unwrap a \(algorithm.rawValue) wrapping; the keyring names the wrong version or algorithm"))
            }
            do {
                if object.kind == .rsa { return try session.decryptOAEP256(wrappedKey, with: object.handle) }
                return try session.unwrap(wrappedKey, with: object.handle, mechanism: mechanism)
            } catch let error as PKCS11Failure where error.function == "C_DecryptInit" && [0x07, 0x71, 0x70].contains(error.rv) {
                // SoftHSM 2.6.1 refuses OAEP parameters other than SHA-1/MGF1-SHA-1 with CKR_ARGUMENTS_BAD.
                throw Refusal(VaultError(.unsupported, "PKCS#11 token '\(self.configuration.tokenLabel)' does not decrypt RSA-OAEP with SHA-256/MGF1-SHA-256 (\(error)): set vault.pkcs11.wrap-algorithm to A256KWP for this token and rotate the key"))
            } catch let error as PKCS11Failure where [0x110, 0x112, 0x40, 0x41, 0x05, 0x06].contains(error.rv) {
                // SoftHSM answers a failed RFC 5649 integrity check with CKR_GENERAL_ERROR or
                // CKR_FUNCTION_FAILED, others with CKR_WRAPPED_KEY_INVALID, a failed OAEP decoding
                // CKR_ENCRYPTED_DATA_INVALID: all mean these bytes were not wrapped by this version
                // (or were changed).
                throw Refusal(VaultError(.invalidInput, "unwrapping under version \(version) of key '\(key)' failed (\(error)): the wrapped key was not made by this version or was changed"))
            }
        }
    }

    private func mechanismType() async throws(VaultError) -> CK_MECHANISM_TYPE {
        if let known = mechanism.value { return known }
        return try await threads.run { () throws(VaultError) in try self.chooseMechanism() }
    }

    private func chooseMechanism() throws(VaultError) -> CK_MECHANISM_TYPE {
        let offered: Set<CK_MECHANISM_TYPE>
        do {
            offered = try pool.mechanisms()
        } catch {
            throw error.vaultError("listing the mechanisms of PKCS#11 token '\(configuration.tokenLabel)'\(absentHint(error))")
        }
        for candidate in [CK_MECHANISM_TYPE(CKM_AES_KEY_WRAP_KWP), CK_MECHANISM_TYPE(CKM_AES_KEY_WRAP_PAD)] where offered.contains(candidate) {
            mechanism.set(candidate)
            return candidate
        }
        throw VaultError(.unsupported, "PKCS#11 token '\(configuration.tokenLabel)' offers neither CKM_AES_KEY_WRAP_KWP (0x210B) nor CKM_AES_KEY_WRAP_PAD (0x210A): this provider needs AES key wrap with padding (RFC 5649); check `pkcs11-tool --list-mechanisms`")
    }

    // MARK: Token access

    /// A refusal decided by the provider inside a session (not a PKCS#11 failure).
    struct Refusal: Error {
        let error: VaultError
        init(_ error: VaultError) { self.error = error }
    }

    /// Runs `body` on a session, on one of the provider's threads (``PKCS11Threads``), while the
    /// calling task is suspended; PKCS#11 failures become vault errors naming `context`, the
    /// function and the `CKR_` name.
    func token<R: Sendable>(_ context: String, _ body: @escaping @Sendable (PKCS11Session) throws -> R) async throws(VaultError) -> R {
        try await threads.run { () throws(VaultError) -> R in try self.onSession(context, body) }
    }

    /// ``token(_:_:)`` on the calling thread.
    func onSession<R>(_ context: String, _ body: (PKCS11Session) throws -> R) throws(VaultError) -> R {
        var refusal: VaultError?
        do {
            return try pool.withSession { (session) throws(PKCS11Failure) -> R in
                do {
                    return try body(session)
                } catch let failure as PKCS11Failure {
                    throw failure
                } catch let decided as Refusal {
                    try Self.loggedOutCheck(decided.error, session)
                    refusal = decided.error
                } catch let error as VaultError {
                    try Self.loggedOutCheck(error, session)
                    refusal = error
                } catch {
                    refusal = VaultError.from(error, context)
                }
                throw PKCS11Failure("(refused)", 0)
            }
        } catch {
            if let refusal { throw refusal }
            throw error.vaultError("\(context) on PKCS#11 token '\(configuration.tokenLabel)'\(absentHint(error))")
        }
    }

    /// A key not found on a session that is not logged in is a logout, not a missing key: SoftHSM
    /// (and tokens like it) hide private objects from a logged-out session instead of answering
    /// `CKR_USER_NOT_LOGGED_IN`, so the search comes back empty. Reported as that return value, the
    /// pool logs in again and repeats the call once (never a "key deleted" to the syncer).
    private static func loggedOutCheck(_ error: VaultError, _ session: PKCS11Session) throws(PKCS11Failure) {
        guard error.code == .notFound || error.code == .deleted else { return }
        if try !session.isUserLoggedIn() { throw PKCS11Failure("C_FindObjects", PKCS11Failure.userNotLoggedIn) }
    }

    private func absentHint(_ failure: PKCS11Failure) -> String {
        guard failure.rv == 0xE0 else { return "" }
        let present = pool.presentLabels()
        return " (no token with this label is present; tokens present: \(present.isEmpty ? "none" : present.map { "'\($0)'" }.joined(separator: ", ")))"
    }
}

/// The mechanism chosen once per provider.
final class MechanismChoice: Sendable {
    private let chosen = Mutex<CK_MECHANISM_TYPE?>(nil)
    var value: CK_MECHANISM_TYPE? { chosen.withLock { $0 } }
    func set(_ value: CK_MECHANISM_TYPE) { chosen.withLock { $0 = value } }
}
