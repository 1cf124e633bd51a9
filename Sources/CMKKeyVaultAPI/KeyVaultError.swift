import Foundation

/// A Key Vault data-plane error, rendered as Azure renders it:
/// `{"error":{"code":"KeyNotFound","message":"…","innererror":{"code":"…"}}}`.
public struct KeyVaultError: Error, Sendable {
    public var status: Int
    public var code: String
    public var message: String
    public var innerCode: String?
    public var extraHeaders: [(name: String, value: String)] = []

    public init(status: Int, code: String, message: String, innerCode: String? = nil, extraHeaders: [(name: String, value: String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.innerCode = innerCode
        self.extraHeaders = extraHeaders
    }

    private struct Body: Encodable {
        struct Inner: Encodable { var code: String }
        struct Detail: Encodable {
            var code: String
            var message: String
            var innererror: Inner?
        }
        var error: Detail
    }

    public var response: ServerResponse {
        .json(status, Body(error: .init(code: code, message: message, innererror: innerCode.map(Body.Inner.init))), headers: extraHeaders)
    }

    // MARK: - The errors the emulator returns, worded as the service words them

    public static func keyNotFound(_ name: String) -> KeyVaultError {
        KeyVaultError(
            status: 404, code: "KeyNotFound",
            message: "A key with (name/id) \(name) was not found in this key vault. If you recently deleted this key you may be able "
                + "to recover it using the correct recovery command. For help resolving this issue, please see "
                + "https://go.microsoft.com/fwlink/?linkid=2125182")
    }

    public static func versionNotFound(_ name: String, _ version: String) -> KeyVaultError {
        keyNotFound("\(name)/\(version)")
    }

    public static func deletedKeyNotFound(_ name: String) -> KeyVaultError {
        KeyVaultError(status: 404, code: "KeyNotFound", message: "Deleted Key not found: \(name)")
    }

    public static func badParameter(_ message: String) -> KeyVaultError {
        KeyVaultError(status: 400, code: "BadParameter", message: message)
    }

    public static func conflictDeleted(_ name: String) -> KeyVaultError {
        KeyVaultError(
            status: 409, code: "Conflict",
            message: "Key \(name) is currently in a deleted but recoverable state, and its name cannot be reused; in this state, "
                + "the key can only be recovered or purged.")
    }

    public static func conflictExists(_ name: String) -> KeyVaultError {
        KeyVaultError(status: 409, code: "Conflict", message: "Key \(name) already exists; it cannot be recovered into.")
    }

    public static func disabled(_ operation: String) -> KeyVaultError {
        KeyVaultError(status: 403, code: "Forbidden", message: "Operation \(operation) is not allowed on a disabled key.", innerCode: "KeyDisabled")
    }

    public static func expired(_ operation: String) -> KeyVaultError {
        KeyVaultError(status: 403, code: "Forbidden", message: "Operation \(operation) is not allowed on an expired key.", innerCode: "KeyExpired")
    }

    public static func notYetValid(_ operation: String) -> KeyVaultError {
        KeyVaultError(
            status: 403, code: "Forbidden", message: "Operation \(operation) is not allowed on a key that is not yet valid (nbf).",
            innerCode: "KeyNotYetValid")
    }

    public static func operationNotPermitted(_ operation: String) -> KeyVaultError {
        KeyVaultError(status: 403, code: "Forbidden", message: "Operation \(operation) is not permitted on this key.", innerCode: "KeyOperationForbidden")
    }

    public static func purgeProtected(vault: String) -> KeyVaultError {
        KeyVaultError(
            status: 403, code: "Forbidden",
            message: "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will "
                + "automatically purge it after the retention period has passed.\r\nVault: \(vault);location=emulator")
    }

    public static func forbiddenByRbac(action: String, vault: String) -> KeyVaultError {
        KeyVaultError(
            status: 403, code: "Forbidden",
            message: "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions "
                + "were changed recently, please observe propagation time.\r\nCaller: appid=emulated\r\nAction: '\(action)'\r\n"
                + "Resource: '/vaults/\(vault)'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\n"
                + "Vault: \(vault);location=emulator\r\n",
            innerCode: "ForbiddenByRbac")
    }

    /// As Azure words it when public network access is disabled (recorded in
    /// https://github.com/microsoft/multimodal-ai/issues/171: 403 `Forbidden`, inner `ForbiddenByConnection`).
    public static func forbiddenByConnection(vault: String) -> KeyVaultError {
        KeyVaultError(
            status: 403, code: "Forbidden",
            message: "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\n"
                + "Caller: appid=emulated;oid=emulated;iss=https://sts.windows.net/emulated/\r\nVault: \(vault);location=emulator",
            innerCode: "ForbiddenByConnection")
    }

    public static func throttled(retryAfter: Int?) -> KeyVaultError {
        KeyVaultError(
            status: 429, code: "Throttled",
            message: "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
            extraHeaders: retryAfter.map { [("Retry-After", String($0))] } ?? [])
    }

    public static func serverError(_ status: Int) -> KeyVaultError {
        switch status {
        case 503: KeyVaultError(status: 503, code: "ServiceUnavailable", message: "The service is temporarily unavailable. Please retry later.")
        case 502: KeyVaultError(status: 502, code: "BadGateway", message: "The service received an invalid response from an upstream server.")
        default: KeyVaultError(status: status, code: "InternalServerError", message: "An unexpected error occurred. Please retry later.")
        }
    }

    public static let missingToken = KeyVaultError(status: 401, code: "Unauthorized", message: "AKV10000: Request is missing a Bearer, PoP, or MTLS_POP token.")
    public static let expiredToken = KeyVaultError(status: 401, code: "Unauthorized", message: "[TokenExpired] Error validating token: 'S2S12086'.")
    public static let unknownToken = KeyVaultError(status: 401, code: "Unauthorized", message: "[BearerReadAccessTokenFailed] Error validating token: 'S2S12005'.")
    public static let wrongAudience = KeyVaultError(status: 401, code: "Unauthorized", message: "AKV10022: Invalid audience.")
}
