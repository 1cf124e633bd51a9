import CMKCore
import Crypto
import CryptoExtras
import Foundation

/// A certificate client assertion for the Microsoft identity platform: a JWT signed RS256 with
/// the certificate's private key, naming the certificate by its SHA-256 thumbprint (`x5t#S256`).
enum ClientAssertion {
    /// Builds the assertion for `clientID` and `audience` (the token endpoint URL), valid for 10 minutes.
    static func make(clientID: String, audience: String, certificateFile: String, keyFile: String, now: Date,
                     jwtID: String = UUID().uuidString) throws(VaultError) -> RedactedSecret {
        let certificateDER = try certificate(certificateFile)
        var keyData = try SecretFile.read(keyFile, what: "client certificate private key")
        defer { keyData.resetBytes(in: 0..<keyData.count) }
        let key: _RSA.Signing.PrivateKey
        do {
            key = try _RSA.Signing.PrivateKey(pemRepresentation: String(decoding: keyData, as: UTF8.self))
        } catch {
            throw VaultError(.misconfigured, "client certificate private key file \(keyFile) is not a PEM RSA private key")
        }
        let header: [String: String] = ["alg": "RS256", "typ": "JWT", "x5t#S256": Base64URL.encode(Data(SHA256.hash(data: certificateDER)))]
        let issued = Int(now.timeIntervalSince1970)
        let claims: [String: Any] = ["aud": audience, "iss": clientID, "sub": clientID, "jti": jwtID,
                                     "nbf": issued, "iat": issued, "exp": issued + 600]
        do {
            let headerJSON = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
            let claimsJSON = try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
            let input = Base64URL.encode(headerJSON) + "." + Base64URL.encode(claimsJSON)
            let signature = try key.signature(for: Data(input.utf8), padding: .insecurePKCS1v1_5)
            return RedactedSecret(input + "." + Base64URL.encode(signature.rawRepresentation))
        } catch {
            throw VaultError(.misconfigured, "cannot sign the client assertion with \(keyFile)", underlying: error)
        }
    }

    /// The DER of the first certificate in a PEM file.
    static func certificate(_ path: String) throws(VaultError) -> Data {
        guard let text = FileManager.default.contents(atPath: path).flatMap({ String(data: $0, encoding: .utf8) }) else {
            throw VaultError(.misconfigured, "client certificate file \(path) cannot be read")
        }
        let begin = "-----BEGIN CERTIFICATE-----", end = "-----END CERTIFICATE-----"
        guard let start = text.range(of: begin), let stop = text.range(of: end, range: start.upperBound..<text.endIndex),
              let der = Data(base64Encoded: text[start.upperBound..<stop.lowerBound].filter { !$0.isWhitespace }) else {
            throw VaultError(.misconfigured, "client certificate file \(path) holds no PEM certificate")
        }
        return der
    }
}
