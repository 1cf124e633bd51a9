import CMKCore
import Crypto
import Foundation

/// A DEK's key check value (`kcv` in a keyring): binds an unwrapped DEK to its id and account, so
/// a wrapping moved to another DEK id or another account's keyring is refused instead of
/// decrypting (and lazily re-encrypting) data under the wrong id.
///
/// `kcv` = the first 16 bytes of HMAC-SHA256(key: DEK, "cmk-syncer dek-check v1" ‖ 0x00 ‖
/// UInt32-BE(length of the account's UTF-8) ‖ account ‖ the DEK id's 16 bytes). HMAC under the DEK
/// is a pseudorandom function of it: the value reveals nothing that helps recover the DEK
/// (finding one would take a search of 2^256 keys), and it is domain-separated from every other
/// use of the DEK (AES-GCM segment keys are derived with HKDF). The check needs the unwrapped
/// DEK, so only someone who can unwrap can compute it. See docs/envelope-format.md.
public enum DEKCheckValue {
    /// Bytes kept in the keyring.
    public static let byteCount = Keyring.checkValueByteCount

    private static let label = Array("cmk-syncer dek-check v1".utf8)

    /// The check value of `dek` as DEK `id` of `account`.
    public static func compute(dek: SecretBytes, account: String, id: DEKID) -> Data {
        let accountBytes = Array(account.utf8)
        var message = label
        message.append(0)
        withUnsafeBytes(of: UInt32(accountBytes.count).bigEndian) { message.append(contentsOf: $0) }
        message.append(contentsOf: accountBytes)
        message.append(contentsOf: id.bytes)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: dek.symmetricKey)
        return Data(code.prefix(byteCount))
    }

    /// Whether `expected` is the check value of `dek` as DEK `id` of `account`, compared in
    /// constant time (the length, which is public, is checked first).
    public static func matches(_ expected: Data, dek: SecretBytes, account: String, id: DEKID) -> Bool {
        let actual = compute(dek: dek, account: account, id: id)
        guard expected.count == actual.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(expected, actual) { difference |= a ^ b }
        return difference == 0
    }
}
