import CMKCore
import CPKCS11
import Foundation

/// One attribute of a template: its type and its value's bytes. Secret values (a DEK being
/// wrapped) are copied only into a buffer that is zeroed and freed after the call.
struct PKCS11Attribute {
    let type: CK_ATTRIBUTE_TYPE
    let value: Value

    enum Value {
        case bytes([UInt8])
        case secret(SecretBytes)
    }

    init(_ type: UInt, _ bytes: [UInt8]) {
        self.type = CK_ATTRIBUTE_TYPE(type)
        self.value = .bytes(bytes)
    }

    static func bool(_ type: UInt, _ value: Bool) -> Self { Self(type, [value ? 1 : 0]) }

    static func ulong(_ type: UInt, _ value: UInt) -> Self {
        Self(type, withUnsafeBytes(of: CK_ULONG(value)) { Array($0) })
    }

    static func text(_ type: UInt, _ value: String) -> Self { Self(type, Array(value.utf8)) }

    static func secret(_ type: UInt, _ value: SecretBytes) -> Self {
        Self(type: CK_ATTRIBUTE_TYPE(type), value: .secret(value))
    }

    private init(type: CK_ATTRIBUTE_TYPE, value: Value) {
        self.type = type
        self.value = value
    }

    /// Calls `body` with a C template of `attributes`, valid only during the call.
    static func withTemplate<R>(_ attributes: [PKCS11Attribute],
                                _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>?, CK_ULONG) throws(PKCS11Failure) -> R) throws(PKCS11Failure) -> R {
        var buffers: [(UnsafeMutableRawPointer, Int)] = []
        defer {
            for (pointer, count) in buffers {
                memset_s_portable(pointer, count)
                pointer.deallocate()
            }
        }
        var template: [CK_ATTRIBUTE] = []
        for attribute in attributes {
            let count: Int
            switch attribute.value {
            case .bytes(let bytes): count = bytes.count
            case .secret(let secret): count = secret.count
            }
            let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 8)
            buffers.append((pointer, max(count, 1)))
            if count > 0 {
                switch attribute.value {
                case .bytes(let bytes): bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: count) }
                case .secret(let secret): secret.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: count) }
                }
            }
            template.append(CK_ATTRIBUTE(type: attribute.type, pValue: count == 0 ? nil : pointer, ulValueLen: CK_ULONG(count)))
        }
        let count = CK_ULONG(template.count)
        return try template.withUnsafeMutableBufferPointer { (buffer) throws(PKCS11Failure) -> R in
            try body(buffer.baseAddress, count)
        }
    }
}

/// Zeroes memory in a way the optimiser keeps (the buffer is freed right after).
@inline(never)
func memset_s_portable(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
    let bytes = pointer.bindMemory(to: UInt8.self, capacity: count)
    for index in 0..<count { bytes[index] = 0 }
    withExtendedLifetime(pointer) {}
}
