import CMKCore
import CPKCS11

/// A PKCS#11 function that returned something other than `CKR_OK`: the function and the return
/// value, printed with the standard's `CKR_` name. Never carries key material or the PIN.
public struct PKCS11Failure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The function that failed, e.g. `C_UnwrapKey`.
    public let function: String
    /// The return value.
    public let rv: CK_RV

    public init(_ function: String, _ rv: CK_RV) {
        self.function = function
        self.rv = rv
    }

    /// The standard's name of the return value (`CKR_WRAPPED_KEY_INVALID`), or its hex value.
    public var name: String { Self.name(of: rv) }

    public var description: String { "\(function) returned \(name)" }

    /// The `CKR_` name of a return value (PKCS #11 3.0 base specification, section 5.1).
    public static func name(of rv: CK_RV) -> String {
        names[rv] ?? "CKR_0x" + String(rv, radix: 16, uppercase: true)
    }

    /// The return values the session pool answers by reopening the session on the same slot.
    static let sessionLost: Set<CK_RV> = [0xB3 /* SESSION_HANDLE_INVALID */, 0xB0 /* SESSION_CLOSED */]
    /// The return values the session pool answers by finding the token again (new slot, new login).
    static let tokenLost: Set<CK_RV> = [0x32 /* DEVICE_REMOVED */, 0xE0 /* TOKEN_NOT_PRESENT */, 0x30 /* DEVICE_ERROR */,
                                        0xE1 /* TOKEN_NOT_RECOGNIZED */, 0x03 /* SLOT_ID_INVALID */]
    /// `CKR_USER_NOT_LOGGED_IN`: the pool logs in again and repeats the call once.
    static let userNotLoggedIn: CK_RV = 0x101

    /// The vault error a failure becomes: the category the syncer plans with (SPEC §5: an
    /// unreachable token is an outage, never a revocation), the function and the `CKR_` name.
    func vaultError(_ context: String) -> VaultError {
        let code: VaultError.Code
        switch rv {
        case 0x32, 0xE0, 0xE1, 0x30, 0x31, 0x03, 0xB0, 0xB3, 0xB5, 0x02, 0x05, 0x06, 0x190, 0x191:
            // device removed/error/memory, token absent, sessions, host memory, general error,
            // function failed, cryptoki not initialized: the token is unreachable, try later.
            code = .unavailable
        case 0xA0, 0xA2, 0xA4, 0x101, 0x100, 0x103:
            // PIN incorrect/expired/locked, user not logged in/already logged in as another type.
            code = .unauthorized
        case 0x68:
            code = .disabled  // CKR_KEY_FUNCTION_NOT_PERMITTED: CKA_UNWRAP/CKA_WRAP false
        case 0x110, 0x112, 0x40, 0x41, 0x21, 0x20:
            // wrapped key invalid/len range, unwrapping key handle, encrypted data, data len, data invalid
            code = .invalidInput
        case 0x70, 0x71, 0x54, 0x63, 0x6A, 0x10, 0x11, 0x12, 0x13:
            // mechanism (param) invalid, function not supported, key type inconsistent, key not
            // wrappable, attribute read-only/sensitive/type/value invalid
            code = .unsupported
        case 0x82, 0x60:
            code = .notFound  // object or key handle invalid: the object was destroyed meanwhile
        default:
            code = .corrupt
        }
        return VaultError(code, "\(context): \(description)")
    }

    static let names: [CK_RV: String] = [
        0x00: "CKR_OK", 0x01: "CKR_CANCEL", 0x02: "CKR_HOST_MEMORY", 0x03: "CKR_SLOT_ID_INVALID", 0x05: "CKR_GENERAL_ERROR",
        0x06: "CKR_FUNCTION_FAILED", 0x07: "CKR_ARGUMENTS_BAD", 0x08: "CKR_NO_EVENT", 0x09: "CKR_NEED_TO_CREATE_THREADS",
        0x0A: "CKR_CANT_LOCK", 0x10: "CKR_ATTRIBUTE_READ_ONLY", 0x11: "CKR_ATTRIBUTE_SENSITIVE", 0x12: "CKR_ATTRIBUTE_TYPE_INVALID",
        0x13: "CKR_ATTRIBUTE_VALUE_INVALID", 0x1B: "CKR_ACTION_PROHIBITED", 0x20: "CKR_DATA_INVALID", 0x21: "CKR_DATA_LEN_RANGE",
        0x30: "CKR_DEVICE_ERROR", 0x31: "CKR_DEVICE_MEMORY", 0x32: "CKR_DEVICE_REMOVED", 0x40: "CKR_ENCRYPTED_DATA_INVALID",
        0x41: "CKR_ENCRYPTED_DATA_LEN_RANGE", 0x50: "CKR_FUNCTION_CANCELED", 0x51: "CKR_FUNCTION_NOT_PARALLEL",
        0x54: "CKR_FUNCTION_NOT_SUPPORTED", 0x60: "CKR_KEY_HANDLE_INVALID", 0x62: "CKR_KEY_SIZE_RANGE",
        0x63: "CKR_KEY_TYPE_INCONSISTENT", 0x64: "CKR_KEY_NOT_NEEDED", 0x65: "CKR_KEY_CHANGED", 0x66: "CKR_KEY_NEEDED",
        0x67: "CKR_KEY_INDIGESTIBLE", 0x68: "CKR_KEY_FUNCTION_NOT_PERMITTED", 0x69: "CKR_KEY_NOT_WRAPPABLE",
        0x6A: "CKR_KEY_UNEXTRACTABLE", 0x70: "CKR_MECHANISM_INVALID", 0x71: "CKR_MECHANISM_PARAM_INVALID",
        0x82: "CKR_OBJECT_HANDLE_INVALID", 0x90: "CKR_OPERATION_ACTIVE", 0x91: "CKR_OPERATION_NOT_INITIALIZED",
        0xA0: "CKR_PIN_INCORRECT", 0xA1: "CKR_PIN_INVALID", 0xA2: "CKR_PIN_LEN_RANGE", 0xA3: "CKR_PIN_EXPIRED", 0xA4: "CKR_PIN_LOCKED",
        0xB0: "CKR_SESSION_CLOSED", 0xB1: "CKR_SESSION_COUNT", 0xB3: "CKR_SESSION_HANDLE_INVALID",
        0xB4: "CKR_SESSION_PARALLEL_NOT_SUPPORTED", 0xB5: "CKR_SESSION_READ_ONLY", 0xB6: "CKR_SESSION_EXISTS",
        0xB7: "CKR_SESSION_READ_ONLY_EXISTS", 0xB8: "CKR_SESSION_READ_WRITE_SO_EXISTS", 0xC0: "CKR_SIGNATURE_INVALID",
        0xC1: "CKR_SIGNATURE_LEN_RANGE", 0xD0: "CKR_TEMPLATE_INCOMPLETE", 0xD1: "CKR_TEMPLATE_INCONSISTENT",
        0xE0: "CKR_TOKEN_NOT_PRESENT", 0xE1: "CKR_TOKEN_NOT_RECOGNIZED", 0xE2: "CKR_TOKEN_WRITE_PROTECTED",
        0xF0: "CKR_UNWRAPPING_KEY_HANDLE_INVALID", 0xF1: "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        0xF2: "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT", 0x100: "CKR_USER_ALREADY_LOGGED_IN", 0x101: "CKR_USER_NOT_LOGGED_IN",
        0x102: "CKR_USER_PIN_NOT_INITIALIZED", 0x103: "CKR_USER_TYPE_INVALID", 0x104: "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        0x105: "CKR_USER_TOO_MANY_TYPES", 0x110: "CKR_WRAPPED_KEY_INVALID", 0x112: "CKR_WRAPPED_KEY_LEN_RANGE",
        0x113: "CKR_WRAPPING_KEY_HANDLE_INVALID", 0x114: "CKR_WRAPPING_KEY_SIZE_RANGE", 0x115: "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        0x120: "CKR_RANDOM_SEED_NOT_SUPPORTED", 0x121: "CKR_RANDOM_NO_RNG", 0x130: "CKR_DOMAIN_PARAMS_INVALID",
        0x150: "CKR_BUFFER_TOO_SMALL", 0x160: "CKR_SAVED_STATE_INVALID", 0x170: "CKR_INFORMATION_SENSITIVE",
        0x180: "CKR_STATE_UNSAVEABLE", 0x190: "CKR_CRYPTOKI_NOT_INITIALIZED", 0x191: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        0x1A0: "CKR_MUTEX_BAD", 0x1A1: "CKR_MUTEX_NOT_LOCKED", 0x200: "CKR_FUNCTION_REJECTED",
    ]
}
