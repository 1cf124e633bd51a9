import Foundation

/// The documented rules for names that clients and operators choose.
public enum Names {
    /// A service-principal key's `displayName`: 1–16 characters.
    public static let keyNameLength = 1...16
    /// An administrator's display name: 1–64 characters.
    public static let administratorNameLength = 1...64
    /// The characters of a key name: ASCII letters and digits, space, `-`, `_`, `.`.
    public static let keyNameCharacters = "ASCII letters, digits, space, '-', '_' and '.'"
    /// The characters of an administrator's name: a key name's, plus `@` and `'` (an e-mail
    /// address or "O'Neil").
    public static let administratorNameCharacters = "ASCII letters, digits, space, '-', '_', '.', '@' and the apostrophe"

    /// Checks a service-principal key's name (field `displayName`).
    public static func checkKeyName(_ name: String) throws(IdentityError) {
        try check(name, field: "displayName", length: keyNameLength, allowed: keyNameCharacters, extra: [])
    }

    /// Checks an administrator's display name.
    public static func checkAdministratorName(_ name: String) throws(IdentityError) {
        try check(name, field: "administrator name", length: administratorNameLength, allowed: administratorNameCharacters,
                  extra: [UInt8(ascii: "@"), UInt8(ascii: "'")])
    }

    /// Checks a platform identity's host: a DNS host name (RFC 1123) of at most 253 characters,
    /// labels of 1–63 letters, digits and '-' that neither start nor end with '-'. Stored in
    /// lower case.
    public static func normalizedHost(_ host: String) throws(IdentityError) -> String {
        let lower = host.lowercased()
        let labels = lower.split(separator: ".", omittingEmptySubsequences: false)
        let valid = !lower.isEmpty && lower.utf8.count <= 253 && lower.allSatisfy(\.isASCII) && labels.allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") }
        }
        guard valid else {
            throw IdentityError(.invalidHost, "host \(quoted(host)) is not a DNS host name: use labels of 1-63 letters, digits and '-' (not first or last) separated by '.', at most 253 characters, e.g. host-1.example.net")
        }
        return lower
    }

    static func check(_ name: String, field: String, length: ClosedRange<Int>, allowed: String, extra: Set<UInt8>) throws(IdentityError) {
        let characters = name.unicodeScalars.count
        guard length.contains(characters) else {
            throw IdentityError(.invalidName, "\(field) \(quoted(name)) has \(characters) characters; use \(length.lowerBound) to \(length.upperBound)")
        }
        let bad = name.unicodeScalars.first { scalar in
            guard scalar.isASCII else { return true }
            let byte = UInt8(scalar.value)
            return !(isLetterOrDigit(byte) || [UInt8(ascii: " "), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ".")].contains(byte) || extra.contains(byte))
        }
        if let bad {
            throw IdentityError(.invalidName, "\(field) \(quoted(name)) contains \(quoted(String(bad))) (U+\(String(bad.value, radix: 16, uppercase: true))); use only \(allowed)")
        }
        guard name.first != " ", name.last != " " else {
            throw IdentityError(.invalidName, "\(field) \(quoted(name)) starts or ends with a space; remove it")
        }
    }

    static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A user-supplied value in quotes with control and non-ASCII characters escaped, so an error
    /// message stays one printable line.
    static func quoted(_ value: String) -> String {
        let shown = value.count > 80 ? String(value.prefix(80)) + "…" : value
        return "'" + shown.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F ? String($0) : $0.escaped(asASCII: true) }.joined() + "'"
    }
}
