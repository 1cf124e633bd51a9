import CMKCore
import CMKEnvelope
import Foundation

// The segment framing (docs/envelope-format.md "Segments"): a whole object — header, then segment
// frames — opened with a fixed DEK, streamed through EnvelopeOpener in chunks whose size the first
// input byte chooses (so a segment split across chunks, the opener's buffer, is exercised too).
// The committed seeds were sealed under this DEK (FUZZ_WRITE_SEEDS, below), so mutations of real
// frames reach the checks after the frame header; forging a GCM tag is out of reach, by design.
let dek = SecretBytes(copying: [UInt8](repeating: 0x5A, count: 32))
let dekID = try! DEKID(bytes: [UInt8](repeating: 0xA5, count: 16))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    let chunk = Int(data[0]) * 7 + 1
    let object = UnsafeBufferPointer(start: data + 1, count: size - 1)
    // The whole-object path.
    let whole = try? EnvelopeOpener.open(object, account: "fuzz-account", objectID: "fuzz-object") { _ in dek }
    // The streaming path, chunk by chunk; it must agree with the whole-object path.
    var streamed: [UInt8]? = nil
    do {
        guard let (header, length) = try EnvelopeHeader.parse(object) else { precondition(whole == nil); return 0 }
        var opener = try EnvelopeOpener(header: header, account: header.account, object: header.object, dek: dek, dekID: header.dekID)
        var out = [UInt8]()
        var position = length
        while position < object.count {
            let end = min(object.count, position + chunk)
            try opener.feed(UnsafeBufferPointer(rebasing: object[position..<end]), into: &out)
            position = end
        }
        try opener.finish()
        streamed = out
    } catch {}
    if let whole, whole != streamed {
        preconditionFailure("the streaming opener and the whole-object opener disagree")
    }
    return 0
}

// FUZZ_WRITE_SEEDS=<dir>: writes sealed objects under this harness's DEK as seeds (first byte: the chunk choice).
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["FUZZ_WRITE_SEEDS"] else { return 0 }
    for (name, plaintext, segment) in [("empty", 0, 16), ("one-segment", 40, 64), ("three-segments", 100, 40), ("exact-segments", 64, 16)] {
        let bytes = [UInt8]((0..<plaintext).map { UInt8(truncatingIfNeeded: $0) })
        let sealed = try! EnvelopeSealer.seal(bytes, dek: dek, dekID: dekID, account: "fuzz-account", object: "fuzz-object", segmentSize: segment)
        FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data([3] + sealed))
    }
    exit(0)
}
