import CMKCore
import CMKEnvelope
@testable import CMKLocalVault
import Foundation
import FuzzSupport

// The files the local vault reads (docs/providers/local.md): a key document (`keys/<name>.json`) and
// `vault.json`. Every input is tried as both, through a real LocalVault opened over temporary
// directories (one for documents, one for vault.json) with a fixed master key (32 bytes of 0x07, the key the seeds were made under:
// docs/testing/fuzzing.md, "Seeds"), so the seeds' sealed private keys and master-key check open.
//   key document: KeyDocument.decode, then the vault's own readers of it: snapshot, history, the
//     keys API's entry (cmk-vault), publicKey and wrap of a DEK for the last two versions, unwrap for the newest.
//   vault.json:   LocalVault.init (VaultMarker.read, the master-key check), history of the keys it names.
// Checks: a decoded document re-encodes and decodes to the same value; a decoded marker re-encodes to
// the same bytes; the snapshot and the keys API's entry agree with the document (versions, deleted);
// a DEK that wraps and unwraps comes back unchanged.
let masterKey = SecretBytes(copying: Data(repeating: 7, count: 32))

/// A vault directory in a new temporary directory. Files are overwritten in place, never created and
/// removed per input: on ext4 that costs tens of milliseconds an input.
func makeVault() -> (configuration: LocalVaultConfiguration, marker: String) {
    var template = Array("/tmp/cmk-fuzz-local-vault-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
        preconditionFailure("mkdtemp failed")
    }
    let configuration = LocalVaultConfiguration(directory: URL(fileURLWithPath: made), masterKey: .bytes(masterKey))
    _ = try! LocalVault(configuration: configuration)
    return (configuration, made + "/vault.json")
}
/// Key documents are read in this vault, whose vault.json stays the one the real vault wrote.
let documents = makeVault()
/// Inputs as vault.json go to this one.
let markers = makeVault()
let dek = SecretBytes(copying: Data(repeating: 0x5A, count: 32))
nonisolated(unsafe) var lastKeyFile: String?

/// Writes a file of the vault (mode 0600, as the vault writes them; anything else is refused before parsing).
func put(_ data: Data, at path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    precondition(fd >= 0, "cannot write \(path)")
    data.withUnsafeBytes { raw in precondition(raw.isEmpty || write(fd, raw.baseAddress, raw.count) == raw.count) }
    close(fd)
}

func tryAsKeyDocument(_ data: Data) {
    let claimed = ((try? JSONSerialization.jsonObject(with: data)) as? [String: Any])?["name"] as? String
    guard let key = (try? KeyReference(claimed ?? "fuzz")) ?? (try? KeyReference("fuzz")) else { return }
    let path = "\(documents.configuration.directory.path)/keys/\(key.name).json"
    if let lastKeyFile, lastKeyFile != path { unlink(lastKeyFile) }
    lastKeyFile = path
    put(data, at: path)
    let document = try? KeyDocument.decode(data, path: path, expectedName: key.name)
    if let document {
        guard let encoded = try? document.encoded() else { preconditionFailure("a key document that decoded does not encode") }
        guard let again = try? KeyDocument.decode(encoded, path: path, expectedName: key.name) else {
            preconditionFailure("a key document that decoded does not decode again after encoding")
        }
        precondition(again == document, "a key document changed across encode and decode")
    }
    // A fresh vault per input: its cache knows a file by identity, and two inputs can share one.
    guard let vault = try? LocalVault(configuration: documents.configuration) else { preconditionFailure("the vault does not open over a valid marker") }
    blocking {
        let snapshot = try? await vault.snapshot(of: key)
        let entry = try? vault.entry(key.name)
        let history = try? vault.history(of: key)
        _ = history?.description
        guard let document else {
            precondition(snapshot == nil && entry == nil, "the vault read a key document that KeyDocument.decode refuses")
            return
        }
        // The same versions; the vault may order them by creation.
        let ids = Set(document.versions.map(\.id))
        switch snapshot {
        case .present(let state)?:
            precondition(!document.isDeleted && Set(state.versions.map(\.id)) == ids, "the snapshot disagrees with the document")
        case .deleted(let deleted)?:
            precondition(document.isDeleted && Set(deleted.versions.map(\.id)) == ids, "the snapshot disagrees with the document")
        default:
            preconditionFailure("a decodable key document reads as \(String(describing: snapshot))")
        }
        if let entry {
            let versions = (entry.live ?? entry.deleted?.key)?.versions.map(\.version)
            precondition(versions.map(Set.init) == ids && (entry.deleted != nil) == document.isDeleted,
                         "the keys API's entry disagrees with the document")
        }
        guard !document.isDeleted else { return }
        // The RSA private operation costs milliseconds: only the newest version unwraps.
        for version in document.versions.suffix(2) {
            _ = try? await vault.publicKey(of: key, version: version.id)
            guard let wrapped = try? await vault.wrap(dek, key: key, version: version.id, algorithm: .rsaOAEP256),
                  version.id == document.versions.last?.id,
                  let unwrapped = try? await vault.unwrap(wrapped, key: key, version: version.id, algorithm: .rsaOAEP256) else { continue }
            precondition(unwrapped == dek, "a DEK wrapped and unwrapped by one version came back changed")
        }
    }
}

func tryAsMarker(_ data: Data) {
    let markerPath = markers.marker
    put(data, at: markerPath)
    if let marker = try? VaultMarker.read(markerPath) {
        let encoder = KeyDocument.encoder()
        guard let encoded = try? encoder.encode(marker) else { preconditionFailure("a vault.json that decoded does not encode") }
        guard let again = try? KeyDocument.decoder().decode(VaultMarker.self, from: encoded), (try? encoder.encode(again)) == encoded else {
            preconditionFailure("a vault.json changed across encode and decode")
        }
    }
    guard let vault = try? LocalVault(configuration: markers.configuration) else { return }
    let names = ((try? VaultMarker.read(markerPath))?.keys?.keys).map(Array.init) ?? []
    for name in names.prefix(4) + ["fuzz"] {
        guard let key = try? KeyReference(name) else { continue }
        _ = (try? vault.history(of: key))?.description
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Data(bytes: data, count: size)
    tryAsKeyDocument(input)
    tryAsMarker(input)
    return 0
}
