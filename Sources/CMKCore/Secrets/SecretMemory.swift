#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Memory for key material that core dumps leave out (issue 24, defect 13).
///
/// Every block lives in pages mapped for this purpose alone and marked `MADV_DONTDUMP`, which both
/// the kernel's core dumps and gdb's `gcore` honour, so a dump of the process (a crash, a watchdog
/// abort, an operator's `gcore`) holds none of it. Blocks are zero-filled when handed out and
/// wiped (`explicit_bzero`) when freed, so freed key bytes do not linger either.
///
/// ``SecretBytes`` keeps its bytes here, and the system libcrypto allocates everything here (the
/// parsed RSA private keys with their Montgomery contexts, and the AES-GCM contexts that use the
/// vault's master key) once `CMKEnvelope` installed these functions as its allocator.
///
/// Small blocks (up to 16 KiB with their header) come from size classes carved out of 256 KiB
/// slabs; a freed block goes back to its class's free list, so the pages are reused and never
/// returned (the daemon's secret memory is bounded by the DEK cache's capacity). Larger blocks get
/// a mapping of their own, unmapped when freed. Not `mlock`ed (the locked-memory limit is small
/// and would cap the DEK cache): keeping secrets out of swap is the host's encrypted swap's job.
public enum SecretMemory {
    /// Whether every mapping so far was marked `MADV_DONTDUMP` (false once `madvise` failed, for
    /// example under a seccomp filter that forbids it; the memory still works).
    public static var excludedFromCoreDumps: Bool { !adviceFailed.load(ordering: .relaxed) }

    /// Bytes mapped so far for small blocks (slabs), for tests and diagnostics.
    public static var slabBytes: Int { state.withLock { $0.slabCount * slabSize } }

    /// A zero-filled block of at least `size` bytes, aligned to 16 bytes, or nil if no memory can
    /// be mapped.
    public static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let total = Swift.max(size, 1) + headerSize
        guard total <= largestClass else { return allocateLarge(total) }
        let index = classIndex(for: total)
        // Addresses cross the lock as integers (pointers are not Sendable).
        let address = state.withLock { state -> UInt in
            if state.freeLists[index] != 0 {
                let free = state.freeLists[index]
                state.freeLists[index] = UnsafeRawPointer(bitPattern: free)!.load(as: UInt.self)
                return free
            }
            return state.carve(classSize(index))
        }
        guard let block = UnsafeMutableRawPointer(bitPattern: address) else { return nil }
        block.storeBytes(of: index, as: Int.self)
        let user = block + headerSize
        // Free blocks hold only their list link; the rest was wiped when they were freed.
        user.storeBytes(of: 0, as: Int.self)
        return user
    }

    /// Wipes and releases a block from ``allocate(_:)``. Nil is ignored.
    public static func free(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        let block = pointer - headerSize
        let index = block.load(as: Int.self)
        if index < 0 {
            let length = -index
            explicit_bzero(block, length)
            munmap(block, length)
            return
        }
        explicit_bzero(pointer, classSize(index) - headerSize)
        let address = UInt(bitPattern: block)
        state.withLock { state in
            UnsafeMutableRawPointer(bitPattern: address)!.storeBytes(of: state.freeLists[index], as: UInt.self)
            state.freeLists[index] = address
        }
    }

    /// `realloc` semantics for a block from ``allocate(_:)``: nil allocates, size 0 frees; the old
    /// block is wiped.
    public static func reallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(size) }
        guard size > 0 else {
            free(pointer)
            return nil
        }
        let capacity = usableSize(pointer)
        if size <= capacity { return pointer }
        guard let bigger = allocate(size) else { return nil }
        bigger.copyMemory(from: pointer, byteCount: capacity)
        free(pointer)
        return bigger
    }

    /// How many bytes the block can hold.
    public static func usableSize(_ pointer: UnsafeMutableRawPointer) -> Int {
        let index = (pointer - headerSize).load(as: Int.self)
        return (index < 0 ? -index : classSize(index)) - headerSize
    }

    // MARK: Layout

    private static let headerSize = 16
    private static let smallestClass = 32
    private static let largestClass = 16 * 1024
    fileprivate static let slabSize = 256 * 1024
    fileprivate static let classCount = 10  // 32 B ... 16 KiB

    private static func classSize(_ index: Int) -> Int { smallestClass << index }

    private static func classIndex(for size: Int) -> Int {
        var index = 0
        while classSize(index) < size { index += 1 }
        return index
    }

    /// Maps private pages that core dumps leave out.
    fileprivate static func map(_ length: Int) -> UnsafeMutableRawPointer? {
        guard let pointer = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              pointer != MAP_FAILED else { return nil }
        #if canImport(Glibc)
        if madvise(pointer, length, MADV_DONTDUMP) != 0 { adviceFailed.store(true, ordering: .relaxed) }
        #endif
        return pointer
    }

    private static let adviceFailed = Atomic<Bool>(false)

    private static func allocateLarge(_ total: Int) -> UnsafeMutableRawPointer? {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let length = (total + page - 1) / page * page
        guard let block = map(length) else { return nil }
        block.storeBytes(of: -length, as: Int.self)
        return block + headerSize
    }

    private struct State: ~Copyable {
        /// The first free block of each class (0: none); each free block holds the next's address.
        var freeLists = [UInt](repeating: 0, count: SecretMemory.classCount)
        var slab: UInt = 0
        var slabUsed = 0
        var slabCount = 0

        /// A new block of `size` bytes from the current slab (a new slab when it is full; the
        /// rest of the old one is left unused).
        mutating func carve(_ size: Int) -> UInt {
            if slab == 0 || slabUsed + size > SecretMemory.slabSize {
                guard let fresh = SecretMemory.map(SecretMemory.slabSize) else { return 0 }
                slab = UInt(bitPattern: fresh)
                slabUsed = 0
                slabCount += 1
            }
            defer { slabUsed += size }
            return slab + UInt(slabUsed)
        }
    }

    private static let state = Mutex(State())
}
