import CMKEnvelope

// The envelope header (docs/envelope-format.md): EnvelopeHeader.parse on any prefix of the input.
// Properties checked beyond "no crash": a parsed header re-encodes to exactly the bytes it was read
// from, and every prefix shorter than an accepted header asks for more bytes instead of failing.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let parsed: (header: EnvelopeHeader, length: Int)?
    do { parsed = try EnvelopeHeader.parse(bytes) } catch { return 0 }
    guard let (header, length) = parsed else {
        // Needs more bytes: the error the opener reports at the end of input must be a truncation.
        precondition(EnvelopeHeader.truncation(byteCount: size).code == .truncated)
        return 0
    }
    precondition(length <= size && length == header.encodedLength, "header length disagrees with its encoding")
    precondition(header.encoded().elementsEqual(bytes.prefix(length)), "a parsed header does not re-encode to its bytes")
    if length > 0, case .some(.some) = try? EnvelopeHeader.parse(bytes.prefix(length - 1)) {
        preconditionFailure("a header one byte short was accepted")
    }
    return 0
}
