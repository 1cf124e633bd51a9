import Foundation

extension DecodingError {
    /// Where the error is, never the offending value (it could be key material): `bad value at
    /// versions.0.created`, `missing field 'name' in document`, `wrong type at …`, `not JSON`.
    /// Shared by the readers of the local vault's files and of the PKCS#11 key record.
    public var place: String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return text.isEmpty ? "document" : text
        }
        switch self {
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not JSON" : "bad value at \(path(context))"
        case .keyNotFound(let key, let context): return "missing field '\(key.stringValue)' in \(path(context))"
        case .typeMismatch(_, let context): return "wrong type at \(path(context))"
        case .valueNotFound(_, let context): return "missing value at \(path(context))"
        @unknown default: return "unreadable"
        }
    }
}
