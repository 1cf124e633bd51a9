import CMKCore
import Foundation

/// The contract every ``StorageDriver`` must honour, as executable checks (modelled on
/// swift-configuration's `ProviderCompatTest`).
///
/// ```swift
/// let names = try await StorageDriverConformance(
///     makeDriver: { account in try DirectoryStorageDriver(directory: root + "/" + account, account: account) },
///     openSecondInstance: { account in try DirectoryStorageDriver(directory: root + "/" + account, account: account) }
/// ).run()
/// ```
///
/// Every check uses a fresh account name, so `makeDriver` must return a driver on an empty
/// location for a name it has not seen. `openSecondInstance`, when given, must open another,
/// independent driver instance on the location `makeDriver` created for that account (another
/// connection, file descriptor set or process stand-in; it is only called after `makeDriver`
/// for the same account); it enables the cross-instance checks.
/// ``run()`` throws a ``StorageConformanceFailure`` on the first violated expectation and
/// returns the names of the checks it ran.
public struct StorageDriverConformance: Sendable {
    /// Opens a driver for an account.
    public typealias Factory = @Sendable (_ account: String) async throws -> any StorageDriver

    let makeDriver: Factory
    let openSecondInstance: Factory?

    /// - Parameters:
    ///   - makeDriver: returns a driver on a fresh, empty location for each new account name.
    ///   - openSecondInstance: returns a second instance on the same location (optional).
    public init(makeDriver: @escaping Factory, openSecondInstance: Factory? = nil) {
        self.makeDriver = makeDriver
        self.openSecondInstance = openSecondInstance
    }

    /// Runs every check in order; throws ``StorageConformanceFailure`` on the first failure.
    /// - Returns: the names of the checks that ran (cross-instance checks only with a second instance).
    @discardableResult
    public func run() async throws -> [String] {
        var ran: [String] = []
        let checks = Self.keyringChecks + Self.objectChecks
        for (index, check) in checks.enumerated() {
            if check.needsSecondInstance, openSecondInstance == nil { continue }
            let account = "conformance-\(index)-\(UInt32.random(in: .min ... .max))"
            let context = Context(check: check.name, account: account, makeDriver: makeDriver, openSecondInstance: openSecondInstance)
            do {
                try await check.body(context)
            } catch let failure as StorageConformanceFailure {
                throw failure
            } catch {
                throw StorageConformanceFailure(check: check.name, message: "unexpected error: \(String(describing: error))")
            }
            ran.append(check.name)
        }
        return ran
    }

    /// The names of every check, in the order ``run()`` runs them.
    public static var checkNames: [String] { (keyringChecks + objectChecks).map(\.name) }

    struct Check: Sendable {
        let name: String
        var needsSecondInstance = false
        let body: @Sendable (Context) async throws -> Void
    }

    /// What one check works with, plus the assertion helpers.
    struct Context: Sendable {
        let check: String
        let account: String
        let makeDriver: Factory
        let openSecondInstance: Factory?

        func driver() async throws -> any StorageDriver { try await makeDriver(account) }

        func second() async throws -> any StorageDriver {
            guard let openSecondInstance else { throw fail("no second instance factory") }
            return try await openSecondInstance(account)
        }

        func fail(_ message: String) -> StorageConformanceFailure {
            StorageConformanceFailure(check: check, message: message)
        }

        func expect(_ condition: Bool, _ message: @autoclosure () -> String) throws {
            if !condition { throw fail(message()) }
        }

        /// Runs `operation` and requires a ``StorageError`` with one of `codes`.
        func expectError<T>(_ codes: [StorageError.Code], _ what: String, _ operation: () async throws -> T) async throws {
            do {
                _ = try await operation()
            } catch let error as StorageError {
                try expect(codes.contains(error.code), "\(what): expected \(codes.map(\.description).joined(separator: " or ")), got \(error)")
                return
            } catch {
                throw fail("\(what): expected a StorageError (\(codes.map(\.description).joined(separator: " or "))), got \(error)")
            }
            throw fail("\(what): expected \(codes.map(\.description).joined(separator: " or ")), but it succeeded")
        }

        /// A valid keyring of this account at `generation`.
        func keyring(generation: UInt64, version: String = "v1") -> Keyring {
            let id = DEKID.random()
            let dek = WrappedDEK(
                id: id, keyVersion: version, wrappedKey: Data((0..<256).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(generation)) }),
                created: Date(timeIntervalSince1970: 1_700_000_000.25 + Double(generation)))
            let key = try! KeyReference("conformance-root")
            return Keyring(account: account, key: key, generation: generation, deks: [dek], activeDEK: id)
        }

        func name(_ text: String) throws -> ObjectName { try ObjectName(text) }

        /// Writes `bytes` in pieces of `piece` bytes and commits.
        @discardableResult
        func put(_ driver: any StorageDriver, _ name: ObjectName, _ bytes: Data, piece: Int = 100_000, _ condition: WriteCondition = .always) async throws -> ObjectRevision {
            let writer = try await driver.makeObjectWriter(name)
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + piece, bytes.count)
                try await writer.write(bytes.subdata(in: offset..<end))
                offset = end
            }
            do {
                return try await writer.commit(condition)
            } catch {
                await writer.abort()
                throw error
            }
        }

        /// Reads a whole object, checking chunk sizes; returns its bytes and revision.
        func get(_ driver: any StorageDriver, _ name: ObjectName) async throws -> (bytes: Data, revision: ObjectRevision) {
            let reader = try await driver.openObject(name)
            var bytes = Data()
            while let chunk = try await reader.next() {
                try expect(chunk.count <= StorageDriverConformance.maximumChunk, "reader of '\(name)' returned a chunk of \(chunk.count) bytes, more than 1 MiB")
                bytes.append(chunk)
            }
            let revision = reader.revision
            await reader.close()
            return (bytes, revision)
        }

        func expectObject(_ driver: any StorageDriver, _ name: ObjectName, equals expected: Data, _ what: String) async throws {
            let (bytes, _) = try await get(driver, name)
            try expect(bytes == expected, "\(what): object '\(name)' holds \(bytes.count) bytes that differ from the expected \(expected.count)")
        }
    }

    /// The largest chunk a reader may return.
    static let maximumChunk = 1 << 20

    /// Deterministic, non-repeating-looking test bytes.
    static func pattern(_ count: Int, seed: UInt8) -> Data {
        var bytes = [UInt8](repeating: 0, count: count)
        var value = UInt32(seed) &* 2_654_435_761 &+ 1
        for index in 0..<count {
            value = value &* 1_664_525 &+ 1_013_904_223
            bytes[index] = UInt8(truncatingIfNeeded: value >> 24)
        }
        let data = Data(bytes)
        return data
    }
}
