import CMKCore
import CMKEnvelope
import Foundation

extension DataPlane {
    /// The rewrite of an object that a read found under an older DEK: the plaintext the read
    /// delivers is sealed again under the active DEK and committed only if the object is still at
    /// the revision read.
    ///
    /// The rewrite is an optimisation of the read, never a condition for it: when the writer cannot
    /// be made, written or committed (a full disk, a read-only file system, a lost lock) it is
    /// abandoned and the reason kept in ``failure``; the read goes on. A conflicting writer or a
    /// delete wins silently, as before.
    struct LazyReencryption {
        private var sealer: EnvelopeSealer
        private var writer: (any ObjectWriter)?
        private let object: ObjectName
        private let account: String
        /// Why the rewrite was abandoned; nil while it goes on, once committed, or when it lost to
        /// another writer.
        private(set) var failure: String?

        /// Starts the rewrite of `object`; a writer that cannot be made abandons it at once.
        static func start(_ sealer: EnvelopeSealer, _ object: ObjectName, of account: Account) async -> LazyReencryption {
            var rewrite = LazyReencryption(sealer: sealer, writer: nil, object: object, account: account.name)
            do {
                rewrite.writer = try await account.driver.makeObjectWriter(object)
            } catch {
                await rewrite.abandon(error)
            }
            return rewrite
        }

        /// Seals and writes the next plaintext the read delivered.
        mutating func update(_ plaintext: [UInt8]) async {
            guard let writer else { return }
            let out = sealer.update(plaintext)
            guard !out.isEmpty else { return }
            do {
                try await writer.write(Data(out))
            } catch {
                await abandon(error)
            }
        }

        /// Finishes the envelope and commits it if the object is still at `revision`; true when
        /// the object is now under the active DEK.
        mutating func commit(ifRevision revision: ObjectRevision) async -> Bool {
            guard let writer else { return false }
            do {
                try await writer.write(Data(sealer.finish()))
                CrashPoints.hit("lazy-reencrypt.before-commit")
                _ = try await writer.commit(.ifRevision(revision))
                CrashPoints.hit("lazy-reencrypt.after-commit")
                self.writer = nil
                return true
            } catch let error as StorageError where error.code == .conflict || error.code == .notFound {
                // Someone rewrote or deleted the object meanwhile; their version wins.
                await abort()
                return false
            } catch {
                await abandon(error)
                return false
            }
        }

        /// Drops the rewrite (the read failed).
        mutating func abort() async {
            await writer?.abort()
            writer = nil
        }

        private mutating func abandon(_ error: any Error) async {
            await abort()
            failure = "re-encryption of object '\(object)' of account '\(account)' under the active DEK was abandoned, the object stays under its older DEK: \(error)"
        }
    }
}
