import CMKCore
import CPKCS11
import Foundation
import Synchronization

/// A PKCS#11 module (the vendor's `.so`), dlopened once per path per process and initialised with
/// `CKF_OS_LOCKING_OK`: the module may use the operating system's locks, so every session can be
/// used from any thread (one call at a time per session, which ``PKCS11SessionPool`` guarantees).
/// Never finalised: the process keeps it until it exits, as every session of it may be in use.
public final class PKCS11Module: @unchecked Sendable {
    // @unchecked: `functions` points into the module's own static function list, which the standard
    // says stays valid and unchanged until C_Finalize (never called); `library` is never used again.
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let library: UnsafeMutableRawPointer
    /// The path it was loaded from (not secret).
    public let path: String

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    private init(path: String, library: UnsafeMutableRawPointer, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>) {
        self.path = path
        self.library = library
        self.functions = functions
    }

    /// The module at `path`, loaded and initialised on first use. `.misconfigured` when the file
    /// cannot be loaded or is no PKCS#11 module, `.unavailable` when its C_Initialize fails.
    public static func load(path: String) throws(VaultError) -> PKCS11Module {
        let result: Result<PKCS11Module, VaultError> = loaded.withLock { loaded in
            if let module = loaded[path] { return .success(module) }
            var library: UnsafeMutableRawPointer?
            var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
            var message: UnsafePointer<CChar>?
            let status = cmk_pkcs11_load(path, &library, &list, &message)
            guard status == 0, let library, let list else {
                let detail = message.map { String(cString: $0) } ?? PKCS11Failure.name(of: CK_RV(bitPattern: status))
                let what = status == -2 ? "is not a PKCS#11 module (no C_GetFunctionList)" : "cannot be loaded"
                return .failure(VaultError(.misconfigured, "PKCS#11 module \(path) \(what): \(detail); set vault.pkcs11.module to the vendor's PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)"))
            }
            var arguments = CK_C_INITIALIZE_ARGS(CreateMutex: nil, DestroyMutex: nil, LockMutex: nil, UnlockMutex: nil,
                                                 flags: CK_FLAGS(CKF_OS_LOCKING_OK), pReserved: nil)
            let rv = list.pointee.C_Initialize(&arguments)
            // CKR_CRYPTOKI_ALREADY_INITIALIZED: another part of this process initialised it.
            guard rv == 0 || rv == 0x191 else {
                return .failure(PKCS11Failure("C_Initialize", rv).vaultError("PKCS#11 module \(path)"))
            }
            let module = PKCS11Module(path: path, library: library, functions: list)
            loaded[path] = module
            return .success(module)
        }
        return try result.get()
    }

    /// Calls a function of the list, turning a missing entry into `CKR_FUNCTION_NOT_SUPPORTED`.
    @inline(__always)
    func call(_ name: String, _ body: (CK_FUNCTION_LIST) -> CK_RV?) throws(PKCS11Failure) {
        guard let rv = body(functions.pointee) else { throw PKCS11Failure(name, 0x54) }
        guard rv == 0 else { throw PKCS11Failure(name, rv) }
    }

    /// The slots with a token present and their labels (trailing blanks removed).
    func tokens() throws(PKCS11Failure) -> [(slot: CK_SLOT_ID, label: String)] {
        var count: CK_ULONG = 0
        try call("C_GetSlotList") { $0.C_GetSlotList?(CK_BBOOL(CK_TRUE), nil, &count) }
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try call("C_GetSlotList") { f in slots.withUnsafeMutableBufferPointer { f.C_GetSlotList?(CK_BBOOL(CK_TRUE), $0.baseAddress, &count) } }
        var found: [(CK_SLOT_ID, String)] = []
        for slot in slots.prefix(Int(count)) {
            var info = CK_TOKEN_INFO()
            do {
                try call("C_GetTokenInfo") { $0.C_GetTokenInfo?(slot, &info) }
            } catch where PKCS11Failure.tokenLost.contains(error.rv) {
                continue
            }
            guard info.flags & CK_FLAGS(CKF_TOKEN_INITIALIZED) != 0 else { continue }
            let label = withUnsafeBytes(of: info.label) { String(decoding: $0, as: UTF8.self) }
            found.append((slot, label.trimmingCharacters(in: CharacterSet(charactersIn: " \0"))))
        }
        return found
    }

    /// The mechanisms a slot's token offers.
    func mechanisms(slot: CK_SLOT_ID) throws(PKCS11Failure) -> Set<CK_MECHANISM_TYPE> {
        var count: CK_ULONG = 0
        try call("C_GetMechanismList") { $0.C_GetMechanismList?(slot, nil, &count) }
        var list = [CK_MECHANISM_TYPE](repeating: 0, count: Int(count))
        try call("C_GetMechanismList") { f in list.withUnsafeMutableBufferPointer { f.C_GetMechanismList?(slot, $0.baseAddress, &count) } }
        return Set(list.prefix(Int(count)))
    }
}
