import CMKEntra
import CMKKeyVaultAPI
import Crypto
import CryptoExtras
import Foundation

extension TokenService {
    /// Validates a certificate client assertion as Entra ID does: a compact JWS (RS256 or PS256)
    /// signed by the registered certificate, named by `x5t` or `x5t#S256`, with `aud` the token
    /// endpoint, `iss` = `sub` = the client id, a `jti`, and a current `nbf`/`exp` (5 minutes' skew).
    /// Returns the error to send, or `nil` when the assertion is good.
    func verifyAssertion(_ assertion: String, clientID: String) -> AADError? {
        guard let certificate = configuration.clientCertificate else {
            return .invalidAssertion("The application has no certificate credential registered.", code: 700027)
        }
        let parts = assertion.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let headerData = KeyVaultBase64URL.decode(parts[0]), let payloadData = KeyVaultBase64URL.decode(parts[1]),
            let signature = KeyVaultBase64URL.decode(parts[2]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any],
            let payload = try? JSONSerialization.jsonObject(with: payloadData) as? [String: Any]
        else {
            return .invalidAssertion("The client assertion is not a well-formed JWT.", code: 50027)
        }
        // MSAL sends the thumbprints padded ("…="); JWS says unpadded. Entra ID takes both.
        func unpadded(_ name: String) -> String? { (header[name] as? String)?.replacingOccurrences(of: "=", with: "") }
        let thumbprintMatches = unpadded("x5t") == certificate.thumbprintSHA1 || unpadded("x5t#S256") == certificate.thumbprintSHA256
        guard thumbprintMatches else {
            return .invalidAssertion("The certificate with identifier used to sign the client assertion is not registered on application.", code: 700027)
        }
        let signedData = Data("\(parts[0]).\(parts[1])".utf8)
        let verified: Bool
        do {
            let key = try _RSA.Signing.PublicKey(pemRepresentation: certificate.publicKeyPEM)
            switch header["alg"] as? String {
            case "RS256": verified = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signedData), padding: .insecurePKCS1v1_5)
            case "PS256": verified = key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signedData), padding: .PSS)
            default: return .invalidAssertion("The client assertion 'alg' must be RS256 or PS256.", code: 5002738)
            }
        } catch {
            return .invalidAssertion("The registered certificate's public key cannot be read.", code: 700027)
        }
        guard verified else { return .invalidAssertion("Client assertion failed signature validation.", code: 700027) }

        guard (payload["aud"] as? String) == tokenEndpoint else {
            return .invalidAssertion("The audience claim in the client assertion must be the token endpoint \(tokenEndpoint).", code: 700212)
        }
        guard (payload["iss"] as? String) == clientID, (payload["sub"] as? String) == clientID else {
            return .invalidAssertion("The client assertion's iss and sub claims must be the client id.", code: 700021)
        }
        guard payload["jti"] is String else { return .invalidAssertion("The client assertion has no jti claim.", code: 700025) }
        let now = configuration.clock.now().timeIntervalSince1970
        guard let exp = payload["exp"] as? Double, exp > now - 300 else {
            return .invalidAssertion("Client assertion is not within its valid time range.", code: 700024)
        }
        if let nbf = payload["nbf"] as? Double, nbf > now + 300 {
            return .invalidAssertion("Client assertion is not within its valid time range.", code: 700024)
        }
        return nil
    }
}
