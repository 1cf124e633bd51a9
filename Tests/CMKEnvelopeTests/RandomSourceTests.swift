import CLibcrypto
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The envelope's salt and nonce prefix come from `cmk_random_bytes` (CLibcrypto shim.h): the
/// vDSO's getrandom on Linux 6.11 and later, else the getrandom(2) system call. A repeat would
/// give two objects under one DEK the same key and nonces, so: fresh bytes on every call and
/// thread, and a forked child never repeats its parent's bytes (the kernel wipes the vDSO state).
@Suite("Envelope random source: vDSO getrandom with the system call as fallback")
struct RandomSourceTests {
    static func draw(vdso: Bool = true) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 39)
        let ok = bytes.withUnsafeMutableBufferPointer { cmk_random_bytes_using(vdso ? 1 : 0, $0.baseAddress, $0.count) }
        #expect(ok == 1)
        return bytes
    }

    /// (major, minor) of the running kernel.
    static func kernel() throws -> (Int, Int) {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return (try #require(parts.first), try #require(parts.dropFirst().first))
    }

    @Test("the vDSO is used exactly when the kernel has getrandom there (6.11 and later)")
    func usesVDSOWhereThereIsOne() throws {
        let (major, minor) = try Self.kernel()
        #expect((cmk_random_uses_vdso() == 1) == (major > 6 || (major == 6 && minor >= 11)), "kernel \(major).\(minor)")
    }

    @Test("every draw differs, through the vDSO and the system call, from 8 threads at once")
    func freshBytes() async {
        let draws = await withTaskGroup(of: [[UInt8]].self) { group in
            for task in 0..<8 {
                group.addTask { (0..<500).map { Self.draw(vdso: ($0 + task) % 3 != 0) } }
            }
            return await group.reduce(into: [[UInt8]]()) { $0 += $1 }
        }
        #expect(draws.count == 4000)
        #expect(Set(draws).count == draws.count, "a draw repeated")
        // Bits set: 4000 × 312 bits, expected half; a stuck or zeroed source is far off.
        let ones = draws.joined().reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(abs(Double(ones) / Double(4000 * 312) - 0.5) < 0.01, "\(ones) bits set")
    }

    @Test("a forked child draws other bytes than its parent's next draw (the vDSO state is wiped on fork)")
    func forkedChildDiffers() throws {
        _ = Self.draw()  // this thread's vDSO state exists before the fork
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        let child = UnsafeMutableRawBufferPointer.allocate(byteCount: 39, alignment: 8)
        defer { child.deallocate() }
        let pid = fork()
        if pid == 0 {
            // The child: no allocation, no Swift runtime calls; draw, send, exit.
            let ok = cmk_random_bytes(child.baseAddress!.assumingMemoryBound(to: UInt8.self), 39)
            _ = write(pipeEnds[1], child.baseAddress!, ok == 1 ? 39 : 0)
            _exit(0)
        }
        #expect(pid > 0)
        close(pipeEnds[1])
        let parent = Self.draw()
        var received = 0
        while received < 39 {
            let got = read(pipeEnds[0], child.baseAddress! + received, 39 - received)
            if got <= 0 { break }
            received += got
        }
        close(pipeEnds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        #expect(received == 39, "the child sent \(received) bytes")
        #expect(Array(child) != parent, "the child repeated its parent's bytes")
    }
}
