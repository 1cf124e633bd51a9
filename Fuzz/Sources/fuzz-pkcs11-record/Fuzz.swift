import CMKCore
@testable import CMKPKCS11
import Foundation

// What the PKCS#11 provider parses from a token's attributes (docs/providers/pkcs11.md, "Object
// mapping"): the key record, the JSON in the CKA_VALUE of the data object labelled with the key's
// name (KeyRecord.decode), and version ids: CKA_ID bytes as the version id (VersionID.hex, the
// creation time in an id of ours, VersionID.created) and a version id back to CKA_ID bytes
// (VersionID.bytes, for the id a caller names). The input is a record's CKA_VALUE; its first 16
// bytes are also read as a CKA_ID.
// Checks: a record that decodes re-encodes to bytes that decode to the same record, and encoding it
// again gives the same bytes (the provider rewrites the record on every change, keeping the other
// versions' dates); an id's hex turns back into the same bytes; a version id that VersionID.bytes
// accepts is the hex of those bytes (one version, one spelling).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let key = try! KeyReference("fuzz")
    if let record = try? KeyRecord.decode(bytes, key: key) {
        let encoded = record.encoded()
        guard let again = try? KeyRecord.decode(encoded, key: key) else { preconditionFailure("a key record that decoded does not decode after encoding") }
        precondition(again == record, "a key record changed across encode and decode")
        precondition(again.encoded() == encoded, "a key record's encoding changed when written again")
        for id in record.versions.keys.prefix(8) + (record.deleted?.enabled.prefix(8) ?? []) { checkVersionID(id) }
    }
    let id = Array(bytes.prefix(16))
    if !id.isEmpty {
        precondition(VersionID.bytes(VersionID.hex(id)) == id, "a CKA_ID does not survive its hex")
        if let created = VersionID.created(id) { _ = KeyRecord.milliseconds(created) }
    }
    checkVersionID(String(decoding: bytes.prefix(130), as: UTF8.self))
    return 0
}

func checkVersionID(_ id: String) {
    guard let bytes = VersionID.bytes(id) else { return }
    precondition(VersionID.hex(bytes) == id.lowercased(), "version id '\(id)' names CKA_ID \(VersionID.hex(bytes))")
}
