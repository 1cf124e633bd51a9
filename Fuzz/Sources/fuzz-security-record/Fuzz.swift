@testable import CMKAudit
import Foundation

// One security-log line (docs/security-log.md "Records"): SecurityRecord.parse, which `cmkctl
// security-log verify` and the daemon's reopen run on every stored line. A line that parses is, by
// the parser's own rule, byte for byte its canonical encoding: checked again here.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let line = UnsafeBufferPointer(start: data, count: size)
    guard let record = try? SecurityRecord.parse(line: line) else { return 0 }
    precondition(record.canonicalBytes(includingHash: true).elementsEqual(line), "an accepted line is not its canonical encoding")
    return 0
}
