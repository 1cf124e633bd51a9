import CMKCore
import Foundation
import Testing

@Suite("Process memory policy")
struct ProcessMemoryTests {
    /// VmRSS of this process in bytes.
    private func residentBytes() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let kilobytes = try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]))
        return kilobytes * 1024
    }

    @Test("applies the arena limit and the trim threshold unless the environment sets them")
    func respectsTheOperatorsTuning() {
        #expect(ProcessMemory.configure(environment: [:]) == .init(arenaLimit: true, trimThreshold: true))
        #expect(ProcessMemory.configure(environment: ["MALLOC_ARENA_MAX": "4"]) == .init(arenaLimit: false, trimThreshold: true))
        #expect(ProcessMemory.configure(environment: ["MALLOC_TRIM_THRESHOLD_": "0"]) == .init(arenaLimit: true, trimThreshold: false))
        #expect(ProcessMemory.configure(environment: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=1"])
                == .init(arenaLimit: false, trimThreshold: false))
        #expect(ProcessMemory.configure(environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"])
                == .init(arenaLimit: true, trimThreshold: true))
    }

    @Test("release() hands freed pages in the middle of a heap back to the kernel")
    func releaseReturnsFreedPages() throws {
        ProcessMemory.configure(environment: [:])
        // 48 MiB in 1 KiB blocks (below the mmap threshold, so they live in a malloc heap),
        // each touched, then freed while a later block pins the top of the heap: malloc keeps
        // the pages until it is told to give them back.
        let count = 48 * 1024
        var blocks: [UnsafeMutableRawPointer] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count {
            let block = UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 16)
            block.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 1024)
            blocks.append(block)
        }
        let pin = UnsafeMutableRawPointer.allocate(byteCount: 1024, alignment: 16)
        defer { pin.deallocate() }
        for block in blocks { block.deallocate() }
        blocks = []
        let before = try residentBytes()
        #expect(ProcessMemory.release())
        let after = try residentBytes()
        #expect(before - after > 32 * 1024 * 1024, "RSS \(before) → \(after) bytes")
    }
}
