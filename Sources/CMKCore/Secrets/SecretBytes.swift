import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Key material in memory: prints `<redacted>`, compares in constant time, and is zeroed when
/// the last reference goes away (or at once with ``zeroize()``).
///
/// The bytes live in a buffer of ``SecretMemory`` (left out of core dumps) that this type owns and
/// never copies out except into swift-crypto's own auto-zeroing `SymmetricKey` for the duration of
/// an operation.
public struct SecretBytes: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let storage: Storage

    /// Copies `bytes` into a new secret buffer. The caller should overwrite its own copy.
    public init(copying bytes: some Collection<UInt8>) {
        storage = Storage(bytes)
    }

    /// `count` bytes written in place by `fill` (for a decryption straight into secret memory).
    /// The buffer starts zeroed; a throw from `fill` wipes it.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        storage = Storage(repeatElement(0, count: count))
        do {
            try storage.withUnsafeMutableBytes { try fill($0) }
        } catch {
            storage.zeroize()  // outside the buffer's lock, which zeroize takes
            throw error
        }
    }

    /// Fresh random bytes from the system's CSPRNG.
    public static func random(count: Int) -> SecretBytes {
        let key = SymmetricKey(size: .init(bitCount: count * 8))
        return key.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// The number of bytes.
    public var count: Int { storage.count }

    /// Whether the bytes have been zeroed (for tests of eviction).
    public var isZeroized: Bool { storage.isZeroized }

    /// Gives temporary access to the bytes. Do not let them escape.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withUnsafeBytes(body)
    }

    /// A swift-crypto key holding a copy of the bytes (itself zeroed when released).
    public var symmetricKey: SymmetricKey { withUnsafeBytes { SymmetricKey(data: $0) } }

    /// Overwrites the bytes with zeros now. Every copy of this value shares the buffer.
    public func zeroize() { storage.zeroize() }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "SecretBytes(<redacted>, \(count) bytes)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// Constant-time comparison of the contents.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        return lhs.withUnsafeBytes { a in
            rhs.withUnsafeBytes { b in
                var difference: UInt8 = 0
                for index in 0..<a.count { difference |= a[index] ^ b[index] }
                return difference == 0
            }
        }
    }

    /// Hashes the length only, so hashing never leaks the contents.
    public func hash(into hasher: inout Hasher) { hasher.combine(count) }

    // The buffer is written only in init and zeroize(); zeroize() may race with a reader, which can
    // then see a mix of zeros and key bytes: that only ever makes a key unusable, never leaks it.
    // Reads and zeroing take the lock, so there is no data race in the memory-model sense.
    private final class Storage: @unchecked Sendable {
        private let pointer: UnsafeMutableRawBufferPointer
        private let lock = NSLock()
        private var zeroed = false

        init(_ bytes: some Collection<UInt8>) {
            let byteCount = Swift.max(bytes.count, 1)
            guard let base = SecretMemory.allocate(byteCount) else {
                fatalError("out of memory: cannot map \(byteCount) bytes of secret memory")
            }
            pointer = UnsafeMutableRawBufferPointer(start: base, count: byteCount)
            var index = 0
            for byte in bytes { pointer[index] = byte; index += 1 }
            count = bytes.count
        }

        let count: Int

        var isZeroized: Bool { lock.withLock { zeroed } }

        func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            lock.lock()
            defer { lock.unlock() }
            return try body(UnsafeRawBufferPointer(rebasing: pointer[0..<count]))
        }

        func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
            lock.lock()
            defer { lock.unlock() }
            return try body(UnsafeMutableRawBufferPointer(rebasing: pointer[0..<count]))
        }

        func zeroize() {
            lock.withLock {
                Self.wipe(pointer)
                zeroed = true
            }
        }

        static func wipe(_ pointer: UnsafeMutableRawBufferPointer) {
            guard let base = pointer.baseAddress else { return }
            #if canImport(Glibc)
            explicit_bzero(base, pointer.count)
            #else
            memset_s(base, pointer.count, 0, pointer.count)
            #endif
        }

        deinit {
            SecretMemory.free(pointer.baseAddress)  // wipes the block
        }
    }
}
