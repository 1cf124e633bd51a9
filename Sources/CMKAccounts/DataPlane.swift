import CMKCore
import CMKEnvelope
import Foundation

/// Reads and writes an account's objects through the envelope format (SPEC §6).
///
/// - `put` encrypts under the active DEK, streaming in bounded memory.
/// - `get` decrypts; an object under an older DEK is returned and rewritten under the active DEK
///   with a conditional replace (lazy re-encryption), so a concurrent writer always wins. The
///   rewrite is an optimisation: when it cannot be written (a full or read-only disk) it is
///   abandoned and the read is served all the same, with the reason in its outcome.
/// - A suspended account refuses both at once: the keyring is read on every operation, so a
///   suspension written by the daemon is seen by every process on the host.
public struct DataPlane: Sendable {
    public let resolver: DEKResolver
    /// Plaintext bytes per envelope segment.
    public var segmentSize = EnvelopeHeader.defaultSegmentSize

    public init(resolver: DEKResolver) {
        self.resolver = resolver
    }

    /// What a read did besides returning the plaintext.
    public struct ReadOutcome: Hashable, Sendable {
        /// The DEK the object was stored under.
        public var dek: DEKID
        /// True when the object was rewritten under the active DEK.
        public var reencrypted: Bool
        /// Plaintext bytes delivered.
        public var bytes: Int
        /// Why the lazy re-encryption of an object under an older DEK was abandoned (its writer
        /// failed: a full or read-only disk, say); the read itself succeeded. Nil otherwise.
        public var reencryptionFailure: String?
    }

    // MARK: Writes

    /// Encrypts the bytes `next` yields (nil at the end) into `object` under the active DEK.
    public func put(_ account: Account, _ object: ObjectName, condition: WriteCondition = .always,
                    from next: () async throws -> [UInt8]?) async throws -> ObjectRevision {
        let keyring = try await usableKeyring(account)
        let active = keyring.active!
        let dek = try await unwrap(active, of: account)
        var sealer = try EnvelopeSealer(dek: dek, dekID: active.id, account: account.name, object: object.value, segmentSize: segmentSize)
        let writer = try await account.driver.makeObjectWriter(object)
        do {
            while let chunk = try await next() {
                let out = sealer.update(chunk)
                if !out.isEmpty { try await writer.write(Data(out)) }
            }
            try await writer.write(Data(sealer.finish()))
            return try await writer.commit(condition)
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// Encrypts `plaintext` into `object`.
    public func put(_ account: Account, _ object: ObjectName, _ plaintext: some Collection<UInt8>,
                    condition: WriteCondition = .always) async throws -> ObjectRevision {
        var remaining: [UInt8]? = Array(plaintext)
        return try await put(account, object, condition: condition) {
            defer { remaining = nil }
            return remaining
        }
    }

    // MARK: Reads

    /// Decrypts `object`, handing plaintext to `sink` segment by segment. The object is complete
    /// only when this returns without error. Objects under an older DEK are rewritten under the
    /// active one on the way (unless `reencrypt` is false).
    @discardableResult
    public func get(_ account: Account, _ object: ObjectName, reencrypt: Bool = true,
                    into sink: ([UInt8]) async throws -> Void) async throws -> ReadOutcome {
        let keyring = try await usableKeyring(account)
        let reader = try await account.driver.openObject(object)
        var rewrite: LazyReencryption?
        do {
            var (header, headerLength, buffered) = try await Self.readHeader(reader, account: account, object: object)
            guard let wrapped = keyring.dek(header.dekID) else {
                throw StorageError(.unknownDEK, "object '\(object)' of account '\(account.name)' is encrypted under DEK \(header.dekID), which the keyring does not hold")
            }
            let dek = try await unwrap(wrapped, of: account)
            var opener = try EnvelopeOpener(header: header, account: account.name, object: object.value, dek: dek, dekID: header.dekID)

            if reencrypt, header.dekID != keyring.activeDEK, let active = keyring.active {
                let activeKey = try await unwrap(active, of: account)
                let sealer = try EnvelopeSealer(dek: activeKey, dekID: active.id, account: account.name, object: object.value, segmentSize: segmentSize)
                rewrite = await LazyReencryption.start(sealer, object, of: account)
            }

            var delivered = 0
            func consume(_ bytes: some Collection<UInt8>) async throws {
                let plaintext = try opener.feed(bytes)
                guard !plaintext.isEmpty else { return }
                delivered += plaintext.count
                try await sink(plaintext)
                await rewrite?.update(plaintext)
            }
            try await consume(buffered[headerLength...])
            buffered = []
            while let chunk = try await reader.next() {
                try await consume(chunk)
            }
            try opener.finish()
            await reader.close()

            let reencrypted = await rewrite?.commit(ifRevision: reader.revision) ?? false
            return ReadOutcome(dek: header.dekID, reencrypted: reencrypted, bytes: delivered, reencryptionFailure: rewrite?.failure)
        } catch {
            await reader.close()
            await rewrite?.abort()
            throw error
        }
    }

    /// Decrypts `object` into memory.
    public func get(_ account: Account, _ object: ObjectName, reencrypt: Bool = true) async throws -> (plaintext: [UInt8], outcome: ReadOutcome) {
        var plaintext: [UInt8] = []
        let outcome = try await get(account, object, reencrypt: reencrypt) { plaintext += $0 }
        return (plaintext, outcome)
    }

    /// The DEK an object is stored under, read from its header only.
    public func dekOf(_ account: Account, _ object: ObjectName) async throws -> DEKID {
        let reader = try await account.driver.openObject(object)
        do {
            let header = try await Self.readHeader(reader, account: account, object: object).header
            await reader.close()
            guard header.account == account.name else {
                throw EnvelopeError(.wrongAccount, "object '\(object)' belongs to account '\(header.account)', not '\(account.name)'")
            }
            return header.dekID
        } catch {
            await reader.close()
            throw error
        }
    }

    /// Reads chunks until the header parses; returns it with the bytes read so far.
    private static func readHeader(_ reader: any ObjectReader, account: Account, object: ObjectName) async throws
        -> (header: EnvelopeHeader, length: Int, buffered: [UInt8]) {
        var buffered: [UInt8] = []
        while true {
            guard let chunk = try await reader.next() else {
                throw EnvelopeError(.truncated, "object '\(object)' of account '\(account.name)' ends inside its header (\(buffered.count) bytes)")
            }
            buffered += chunk
            if let (header, length) = try EnvelopeHeader.parse(buffered) { return (header, length, buffered) }
        }
    }

    // MARK: Sweep

    /// Progress of a sweep.
    public struct SweepProgress: Hashable, Sendable, Codable {
        public var total: Int
        public var examined = 0
        public var reencrypted = 0
        public var alreadyCurrent = 0
        public var failed: [String: String] = [:]
        /// The last object examined; pass it as `after` to resume.
        public var cursor: String?
    }

    /// Re-encrypts every object still under an older DEK. Objects already under the active DEK
    /// cost one header read, so an interrupted sweep can simply run again; `after` skips the
    /// objects up to and including that name. One object's failure is recorded, not fatal; a
    /// suspension or a throttling vault stops the sweep.
    public func sweep(_ account: Account, after: ObjectName? = nil,
                      progress: (SweepProgress) -> Void = { _ in }) async throws -> SweepProgress {
        let keyring = try await usableKeyring(account)
        let names = try await account.driver.listObjects().filter { after == nil || $0 > after! }
        var state = SweepProgress(total: names.count)
        progress(state)
        for name in names {
            do {
                if try await dekOf(account, name) == keyring.activeDEK {
                    state.alreadyCurrent += 1
                } else {
                    let outcome = try await get(account, name, reencrypt: true) { _ in }
                    if outcome.reencrypted {
                        state.reencrypted += 1
                    } else if let failure = outcome.reencryptionFailure {
                        state.failed[name.value] = failure
                    } else {
                        state.alreadyCurrent += 1
                    }
                }
            } catch let error as StorageError where error.code == .suspended {
                throw error
            } catch let error as VaultError where error.code == .throttled {
                // The vault would refuse every further object too: stop; running again resumes.
                throw error
            } catch let error as StorageError where error.code == .notFound {
                // Deleted while sweeping: nothing left to re-encrypt.
            } catch {
                state.failed[name.value] = String(describing: error)
            }
            state.examined += 1
            state.cursor = name.value
            progress(state)
        }
        return state
    }

    // MARK: Helpers

    /// Unwraps through the resolver. A version the vault does not know, of a key it has, means a
    /// keyring of another key or vault, or a damaged one: said so, instead of a "not found" that
    /// reads like a pulled key (one snapshot, on that failure only).
    private func unwrap(_ wrapped: WrappedDEK, of account: Account) async throws -> SecretBytes {
        do {
            return try await resolver.unwrap(wrapped, account: account.name, key: account.key)
        } catch let error as VaultError where error.code == .notFound {
            if case .present(let state)? = try? await resolver.vault.snapshot(of: account.key),
               !state.versions.contains(where: { $0.id == wrapped.keyVersion }) {
                throw StorageError(.corrupt, "DEK \(wrapped.id) of account '\(account.name)' is wrapped under version \(wrapped.keyVersion), which key '\(account.key)' does not have: the keyring belongs to another key or vault, or was damaged; restore it from a backup", underlying: error)
            }
            throw error
        }
    }

    private func usableKeyring(_ account: Account) async throws -> Keyring {
        guard let keyring = try await account.driver.readKeyring() else {
            if try await !account.driver.listObjects().isEmpty {
                throw StorageError(.keyringMissing, "account '\(account.name)' holds objects but its keyring is missing: restore the keyring from a backup; no new keyring is made")
            }
            throw StorageError(.notFound, "account '\(account.name)' has no keyring yet: run a sync pass first")
        }
        try RebindExecutor.check(keyring, belongsTo: account)
        if let suspension = keyring.suspension {
            resolver.cache.purge(account: account.name)
            throw StorageError(.suspended, "account '\(account.name)' is suspended since \(suspension.since.ISO8601Format()) (\(suspension.reason.rawValue)): reads and writes are refused until the key is restored")
        }
        return keyring
    }
}
