import CMKTransparency
import CMKVaultLog
import Foundation

// The vault service's security log as a client reads it (docs/vault-service.md "Security Logs API"):
// a record's leaf (SecurityLogRecord(leaf:), RFC 3339 times) and the signed checkpoint (a C2SP
// signed note, then the checkpoint body). A leaf that parses must re-encode to a leaf that parses
// to the same record.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    if let record = try? SecurityLogRecord(leaf: Data(bytes)) {
        _ = SecurityLogRecord.parseTime(record.time)
        guard let leaf = try? record.canonicalJSON() else { preconditionFailure("a parsed record does not encode") }
        precondition((try? SecurityLogRecord(leaf: leaf)) == record, "a record changed across its canonical encoding")
    }
    if let note = try? SignedNote(parsing: bytes) {
        _ = try? Checkpoint(text: note.text)
    }
    _ = try? Checkpoint(text: String(decoding: bytes, as: UTF8.self))
    return 0
}
