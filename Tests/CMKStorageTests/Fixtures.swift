import CMKCore
import Foundation

/// A valid keyring for `account` at `generation`.
func sampleKeyring(_ account: String, generation: UInt64) -> Keyring {
    let id = DEKID.random()
    let dek = WrappedDEK(id: id, keyVersion: "v\(generation)", wrappedKey: Data(repeating: 0xA5, count: 256), created: Date(timeIntervalSince1970: 1_700_000_000))
    return Keyring(account: account, key: try! KeyReference("root"), generation: generation, deks: [dek], activeDEK: id)
}

/// Writes and commits one object.
@discardableResult
func put(_ driver: any StorageDriver, _ name: String, _ bytes: Data, _ condition: WriteCondition = .always) async throws -> ObjectRevision {
    let writer = try await driver.makeObjectWriter(try ObjectName(name))
    try await writer.write(bytes)
    return try await writer.commit(condition)
}

/// Reads a whole object.
func get(_ driver: any StorageDriver, _ name: String) async throws -> Data {
    let reader = try await driver.openObject(try ObjectName(name))
    var bytes = Data()
    while let chunk = try await reader.next() { bytes.append(chunk) }
    await reader.close()
    return bytes
}

/// The error `operation` throws, as a StorageError (nil if it succeeds or throws something else).
func storageError(_ operation: () async throws -> Void) async -> StorageError? {
    do { try await operation() } catch { return error as? StorageError }
    return nil
}

/// Waits until files written now have settled, so a driver keeps what it reads from them
/// (`FileDerivedCache`).
func settleFiles() async throws {
    try await Task.sleep(for: .milliseconds(FileDerivedCache<Keyring?>.settleMargin * 1_000 + 200))
}
