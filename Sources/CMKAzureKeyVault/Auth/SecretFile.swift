import CMKCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads secret files (client secret, certificate private key): regular files that only their
/// owner may read (mode 0600 or 0400, as `LoadCredential=` provides them).
enum SecretFile {
    static func read(_ path: String, what: String) throws(VaultError) -> Data {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw VaultError(.misconfigured, "\(what) file \(path) cannot be read: \(String(cString: strerror(errno)))")
        }
        if let problem = FileAccessRule.credentialFile.problem(with: info, path: path, what: "\(what) file") {
            throw VaultError(.misconfigured, problem.kind == .mode ? "\(problem) (or let LoadCredential= provide it)" : problem.description)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VaultError(.misconfigured, "\(what) file \(path) cannot be read")
        }
        return data
    }

    /// The file as a secret string without a trailing newline; refused when empty.
    static func readSecret(_ path: String, what: String) throws(VaultError) -> RedactedSecret {
        var data = try read(path, what: what)
        defer { data.resetBytes(in: 0..<data.count) }
        guard var text = String(data: data, encoding: .utf8) else {
            throw VaultError(.misconfigured, "\(what) file \(path) is not UTF-8 text")
        }
        while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
        guard !text.isEmpty else { throw VaultError(.misconfigured, "\(what) file \(path) is empty") }
        return RedactedSecret(text)
    }
}
