/// Comparisons whose running time does not depend on where two byte strings differ.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes. Every byte of both is read whatever the contents
    /// (no early exit); only the lengths, which are public (32-byte hashes), end it at once.
    public static func equal<A: Collection<UInt8>, B: Collection<UInt8>>(_ a: A, _ b: B) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
