import CMKCore
import Foundation

// The keyring encoding (docs/storage.md "Keyring encoding"): every driver — directory file, SQLite
// row, postgres row — decodes its stored keyring with KeyringJSON.decode. The account the stored
// JSON claims is passed as the expected one, so the checks after the account match are reached.
// A keyring that decodes must survive encodeChecked and decode back to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let json = Data(bytes: data, count: size)
    let account = ((try? JSONSerialization.jsonObject(with: json)) as? [String: Any])?["account"] as? String ?? "fuzz"
    guard let keyring = try? KeyringJSON.decode(json, account: account, source: "fuzz input") else { return 0 }
    let previous = keyring.generation > 1 ? keyring.generation - 1 : nil
    guard keyring.generation >= 1, let encoded = try? KeyringJSON.encodeChecked(keyring, account: account, expectedGeneration: previous) else {
        return 0
    }
    guard let again = try? KeyringJSON.decode(encoded, account: account, source: "re-encoded fuzz input") else {
        preconditionFailure("a keyring that decoded does not decode again after encodeChecked")
    }
    precondition(again == keyring, "a keyring changed across encode and decode")
    return 0
}
